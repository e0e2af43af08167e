"""`import-original`: M1 parameter dictionaries of dpkingma/nips14-ssl -> model folders of this package.

The dictionaries are built here by hand with the original's key names, shapes ((out, in) matrices, (out, 1) biases)
and file format (ndict.savez: a .tar.gz of arrays.npz + names.txt); the outputs are checked against the original's
equations (GPUVAE_Z_X.factors, column vectors) written out in NumPy.
"""

from __future__ import annotations

import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gencore.losses import gaussian_kl
from m1_hyperspectral.cli_import import import_original
from m1_hyperspectral.model import M1, M1Config

BANDS, HIDDEN, LATENT = 7, [6, 5], 3


def params(likelihood: str = "gaussian", seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)

    def m(out: int, inp: int) -> np.ndarray:
        return rng.normal(0, 1 / np.sqrt(inp), (out, inp)).astype(np.float32)

    def b(out: int, shift: float = 0.0) -> np.ndarray:
        return (rng.normal(0, 0.3, (out, 1)) + shift).astype(np.float32)

    v = {"w0": m(6, BANDS), "b0": b(6), "w1": m(5, 6), "b1": b(5), "mean_w": m(LATENT, 5), "mean_b": b(LATENT),
         "logvar_w": m(LATENT, 5), "logvar_b": b(LATENT, -1.0)}  # fmt: skip
    w = {"w0": m(5, LATENT), "b0": b(5), "w1": m(6, 5), "b1": b(6), "out_w": m(BANDS, 6), "out_b": b(BANDS)}
    if likelihood == "gaussian":
        w["out_logvar_w"], w["out_logvar_b"] = m(BANDS, 6), b(BANDS, -2.0)
    if likelihood == "bounded01":
        w["out_logvar_b"], w["out_unif"] = b(BANDS, -3.0), b(BANDS, -2.0)
    return v, w


def save_ndict(d: dict, path: Path) -> None:
    """As the original's ndict.savez: sorted keys, arrays positional in arrays.npz, names in names.txt."""
    keys = sorted(d)
    buf = io.BytesIO()
    np.savez(buf, *[d[k] for k in keys])
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (("arrays.npz", buf.getvalue()), ("names.txt", "".join(k + "\n" for k in keys).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def run_folder(tmp_path: Path, v: dict, w: dict, stem: str = "_best") -> Path:
    folder = tmp_path / "orig"
    folder.mkdir(exist_ok=True)
    save_ndict(v, folder / f"v{stem}.ndict.tar.gz")
    save_ndict(w, folder / f"w{stem}.ndict.tar.gz")
    return folder


def invoke(*args: str):  # noqa: ANN201
    return CliRunner().invoke(import_original, [str(a) for a in args])


def original(v: dict, w: dict, x: np.ndarray, eps: np.ndarray, likelihood: str, act: str) -> dict:
    """GPUVAE_Z_X.factors in float64 with column vectors (x: bands x n, eps: latent x n)."""
    f = {"softplus": lambda a: np.log(np.exp(a) + 1), "tanh": np.tanh}[act]
    v = {k: a.astype(np.float64) for k, a in v.items()}
    w = {k: a.astype(np.float64) for k, a in w.items()}
    h = x
    for i in range(2):
        h = f(v[f"w{i}"] @ h + v[f"b{i}"])
    mean, logvar = v["mean_w"] @ h + v["mean_b"], v["logvar_w"] @ h + v["logvar_b"]
    z = mean + np.exp(0.5 * logvar) * eps
    h = z
    for i in range(2):
        h = f(w[f"w{i}"] @ h + w[f"b{i}"])

    def normal2(x_, mu, lv):
        return -0.5 * np.log(2 * np.pi) - lv / 2 - (x_ - mu) ** 2 / (2 * np.exp(lv))

    out = {"mean": mean, "logvar": logvar}
    if likelihood == "bernoulli":
        p = 1 / (1 + np.exp(-(w["out_w"] @ h + w["out_b"])))
        logpx, out["px"] = x * np.log(p) + (1 - x) * np.log(1 - p), p
    elif likelihood == "gaussian":
        xm, xlv = w["out_w"] @ h + w["out_b"], w["out_logvar_w"] @ h + w["out_logvar_b"]
        logpx, out["px"], out["px_logvar"] = normal2(x, xm, xlv), xm, xlv
    else:
        xm, xlv = 1 / (1 + np.exp(-(w["out_w"] @ h + w["out_b"]))), w["out_logvar_b"] * np.ones_like(x)
        wu = 1 / (1 + np.exp(-w["out_unif"]))
        logpx = np.log(wu + (1 - wu) * np.exp(normal2(x, xm, xlv)))
        out["px"], out["px_logvar"] = xm, xlv
    logpz = -0.5 * (np.log(2 * np.pi) + mean**2 + np.exp(logvar)).sum(0)
    logqz = -0.5 * (np.log(2 * np.pi) + 1 + logvar).sum(0)
    out["bound"] = logpx.sum(0) + logpz - logqz
    return {k: a.T for k, a in out.items()}


@torch.no_grad()
def ours(model: M1, x: np.ndarray, eps: np.ndarray) -> dict:
    xt = model.normalize(torch.from_numpy(x.T.copy()))
    mean, logvar = model.encode(xt)
    params_ = model.decode(mean + (0.5 * logvar).exp() * torch.from_numpy(eps.T.copy()))
    out = {"mean": mean, "logvar": logvar, "bound": model.log_px(xt, params_) - gaussian_kl(mean, logvar)}
    if "logits" in params_:
        out["px"] = torch.sigmoid(params_["logits"])
    else:
        out["px"], out["px_logvar"] = params_["mean"], params_["logvar"]
    return {k: t.double().numpy() for k, t in out.items()}


@pytest.mark.parametrize(("likelihood", "act"), [("gaussian", "softplus"), ("bernoulli", "tanh"),
                                                 ("bounded01", "softplus")])  # fmt: skip
def test_imported_model_computes_the_original_equations(tmp_path: Path, likelihood: str, act: str) -> None:
    v, w = params(likelihood)
    out = tmp_path / "model"
    result = invoke(run_folder(tmp_path, v, w), "-o", out, "--activation", act)
    assert result.exit_code == 0, result.output
    assert f"{likelihood} likelihood" in result.output
    model = M1.from_pretrained(out).eval()  # the package's own loader
    assert model.config == M1Config(bands=BANDS, hidden=HIDDEN, latent=LATENT, activation=act,
                                    likelihood=likelihood, logvar_bound=0.0)  # fmt: skip
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (BANDS, 16)).astype(np.float32)
    eps = rng.standard_normal((LATENT, 16)).astype(np.float32)
    ref, got = original(v, w, x, eps, likelihood, act), ours(model, x, eps)
    assert set(ref) == set(got)
    for key in ref:
        np.testing.assert_allclose(got[key], ref[key], atol=1e-5, rtol=1e-5, err_msg=key)
    record = json.loads((out / "imported_from.json").read_text())
    assert record["activation"] == act and len(record["files"]) == 2


def test_npz_file_last_pair_single_file_and_normalization(tmp_path: Path) -> None:
    v, w = params("bernoulli")
    npz = tmp_path / "m1.npz"
    np.savez(npz, **{f"v.{k}": a for k, a in v.items()}, **{f"w.{k}": a for k, a in w.items()})
    assert invoke(npz, "-o", tmp_path / "a").exit_code == 0
    folder = run_folder(tmp_path, v, w, stem="")  # v.ndict.tar.gz / w.ndict.tar.gz (the last weights)
    assert invoke(folder, "-o", tmp_path / "b").exit_code == 2  # no v_best/w_best
    assert invoke(folder, "-o", tmp_path / "b", "--last").exit_code == 0
    assert invoke(folder / "w.ndict.tar.gz", "-o", tmp_path / "c").exit_code == 0  # partner found beside it
    a, b, c = (M1.from_pretrained(tmp_path / n) for n in "abc")
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]) and torch.equal(value, c.state_dict()[key])
    # the per-band scaling the original's inputs had: the model then takes raw values
    lo, span = np.arange(BANDS, dtype=np.float32), np.full(BANDS, 10.0, np.float32)
    np.savez(tmp_path / "norm.npz", band_min=lo, band_range=span)
    assert invoke(npz, "-o", tmp_path / "d", "--normalization", tmp_path / "norm.npz").exit_code == 0
    d = M1.from_pretrained(tmp_path / "d")
    raw = torch.rand(4, BANDS) * 10 + torch.from_numpy(lo)
    with torch.no_grad():
        assert torch.allclose(d.encode(d.normalize(raw))[0], a.encode((raw - torch.from_numpy(lo)) / 10)[0], atol=1e-6)


def test_shape_orientation_and_1d_biases(tmp_path: Path) -> None:
    """Biases stored as (n,) are accepted; a transposed matrix is refused with its key and both shapes."""
    v, w = params()
    v["b0"] = v["b0"][:, 0]
    assert invoke(run_folder(tmp_path, v, w), "-o", tmp_path / "ok").exit_code == 0
    v, w = params()
    v["w1"] = v["w1"].T.copy()
    result = invoke(run_folder(tmp_path, v, w), "-o", tmp_path / "bad")
    assert result.exit_code == 2
    assert "'w1' has shape (6, 5), expected 6 columns" in result.output
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda v, w: v.update(scale0=np.ones((6, 1), np.float32)), "unknown key 'scale0'"),
        (lambda v, w: w.update(mog_mean0=np.ones((3, 1), np.float32)), "unknown key 'mog_mean0'"),
        (lambda v, w: w.pop("b1"), "missing key 'b1'"),
        (lambda v, w: v.pop("logvar_w"), "missing key 'logvar_w'"),
        (lambda v, w: w.update(out_b=np.ones((BANDS + 1, 1), np.float32)), "'out_b' has shape (8, 1), expected (7,)"),
        (
            lambda v, w: w.update(
                w1=np.ones((4, 5), np.float32), b1=np.ones((4, 1), np.float32), out_w=np.ones((BANDS, 4), np.float32)
            ),
            "decoder widths [5, 4] are not the encoder's",
        ),
        (lambda v, w: v.update(mean_b=np.full((LATENT, 1), np.nan, np.float32)), "'mean_b' holds NaN"),
        (lambda v, w: v.update(w0=np.ones((6, BANDS), np.int64)), "'w0' has dtype int64"),
    ],
)
def test_bad_parameters_are_one_line_errors(tmp_path: Path, edit, message: str) -> None:  # noqa: ANN001
    v, w = params()
    edit(v, w)
    result = invoke(run_folder(tmp_path, v, w), "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_pickles_and_foreign_archives_are_refused(tmp_path: Path) -> None:
    v, w = params()
    pkl = tmp_path / "v_best.pkl"
    pkl.write_bytes(pickle.dumps(v, protocol=2))
    result = invoke(pkl, "-o", tmp_path / "out")
    assert result.exit_code == 2 and "refusing to unpickle" in result.output
    obj = tmp_path / "obj.npz"
    np.savez(obj, **{"v.w0": np.array([{"a": 1}], dtype=object)})
    result = invoke(obj, "-o", tmp_path / "out")
    assert result.exit_code == 2 and "plain numeric arrays" in result.output
    folder = run_folder(tmp_path, v, w)
    with tarfile.open(folder / "v_best.ndict.tar.gz", "w:gz") as tar:  # an extra member: refused, never extracted
        info = tarfile.TarInfo("../evil.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    result = invoke(folder, "-o", tmp_path / "out")
    assert result.exit_code == 2 and "unexpected member '../evil.txt'" in result.output
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out").exists()
    np.savez(tmp_path / "keys.npz", **{"q.w0": np.ones((2, 2), np.float32)})
    result = invoke(tmp_path / "keys.npz", "-o", tmp_path / "out")
    assert result.exit_code == 2 and "unknown key 'q.w0'" in result.output


def test_output_rule(tmp_path: Path) -> None:
    folder = run_folder(tmp_path, *params())
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    result = invoke(folder, "-o", busy)
    assert result.exit_code == 2 and "already holds files this command did not write (notes.txt)" in result.output
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    out = tmp_path / "model"
    assert invoke(folder, "-o", out).exit_code == 0
    result = invoke(folder, "-o", out)
    assert result.exit_code == 2 and "--overwrite" in result.output
    before = (out / "model.safetensors").read_bytes()
    assert invoke(folder, "-o", out, "--overwrite", "--activation", "tanh").exit_code == 0
    assert M1.from_pretrained(out).config.activation == "tanh"
    assert (out / "model.safetensors").read_bytes() == before  # same weights, new config
    assert invoke(tmp_path / "missing", "-o", tmp_path / "x").exit_code == 2


def test_default_config_keeps_the_clamp_and_old_configs_read(tmp_path: Path) -> None:
    """logvar_bound defaults to 10 (today's soft clamp); a config.json without the key reads as before."""
    torch.manual_seed(0)
    model = M1(M1Config(bands=BANDS, hidden=[4], latent=2))
    with torch.no_grad():
        model.q_head.bias.fill_(30.0)  # log-variances far outside (-10, 10)
        _, logvar = model.encode(torch.rand(3, BANDS))
    assert logvar.max() < 10.0
    model.save_pretrained(tmp_path / "m")
    raw = json.loads((tmp_path / "m" / "config.json").read_text())
    assert raw.pop("logvar_bound") == 10.0
    assert M1Config(**raw).logvar_bound == 10.0


def test_extract_reads_an_imported_model(tmp_path: Path) -> None:
    from m1_hyperspectral.cli import main

    assert invoke(run_folder(tmp_path, *params()), "-o", tmp_path / "model").exit_code == 0
    cube = np.random.default_rng(0).uniform(0, 1, (4, 5, BANDS)).astype(np.float32)
    np.save(tmp_path / "cube.npy", cube)
    result = CliRunner().invoke(main, ["extract", str(tmp_path / "model"), str(tmp_path / "cube.npy"), "-o",
                                       str(tmp_path / "f.h5")])  # fmt: skip
    assert result.exit_code == 0, result.output
    model = M1.from_pretrained(tmp_path / "model")
    from m1_hyperspectral.features import load_features

    arrays, _ = load_features(tmp_path / "f.h5")
    with torch.no_grad():
        mean = model.encode(torch.from_numpy(cube.reshape(-1, BANDS)))[0].numpy()
    np.testing.assert_allclose(arrays["mean"], mean, atol=1e-6)
