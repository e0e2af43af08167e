"""M1 models of dpkingma/nips14-ssl imported with `m1-hyperspectral import-original`: same outputs as the original?

The reference is not part of this repository: pass a local checkout of dpkingma/nips14-ssl (``--reference``). Its
M1 (``anglepy/models/GPUVAE_Z_X.py``) is Theano code for Python 2, which does not run here (no Theano, Python 3),
and its ``anglepy/ndict.py`` (the file writer) does not import under Python 3 either. So this script

1. reads the parameter names that the reference's ``init_w`` creates from its source and checks that the converter
   knows every one of them (or refuses it on purpose: the mixture-of-Gaussians and Student-t priors);
2. builds original-layout parameter dictionaries ``v`` (q(z|x)) and ``w`` (p(x|z)) with random weights, drawn as
   ``init_w`` draws them (N(0, 1) / sqrt(fan-in); log-variance weights and all biases also random here, so that
   every parameter matters), for each likelihood (bernoulli, gaussian, bounded01) and non-linearity (softplus,
   tanh), and saves them as ``ndict.savez`` does (a .tar.gz of ``arrays.npz`` with the arrays in sorted key order
   as arr_0, arr_1, ... and ``names.txt``); when the checkout holds the trained MNIST M1 that the original ships
   (``models/mnist_z_x_50-500-500_longrun/{v,w}_best.ndict.tar.gz``, written by the original itself), that is
   imported too (and fed MNIST-like images: scikit-learn's digits centred on 28×28, MNIST is not in the checkout);
3. converts each with the command (a subprocess running the click command, exit code checked) and loads the
   folder with ``M1.from_pretrained``;
4. evaluates the original's equations as written in ``GPUVAE_Z_X.factors`` in NumPy float64 with column vectors
   (``W.dot(h) + b.dot(A)``; softplus = log(exp(x) + 1); the bound logpx + logpz - logqz with the "gaussianmarg"
   terms) on the same inputs x in [0, 1] and the same noise eps, and compares: q(z|x) mean and log-variance, p(x|z)
   parameters (bernoulli probabilities; gaussian/bounded01 mean and log-variance) at z = mean + exp(logvar/2)·eps
   (max abs difference, float32 model vs float64 equations), and the bound per pixel (max relative difference: it
   is a sum over all bands of values of tens to hundreds of nats).

    .venv/bin/python benchmarks/m1_import_vs_reference.py --reference /path/to/nips14-ssl
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

from gencore.losses import gaussian_kl
from m1_hyperspectral.model import M1

SHIPPED = "models/mnist_z_x_50-500-500_longrun"


def reference_names(reference: Path) -> set[str]:
    """Parameter names that the reference's GPUVAE_Z_X.init_w creates (hidden layers as w<i>/b<i>)."""
    source = (reference / "anglepy" / "models" / "GPUVAE_Z_X.py").read_text()
    body = source[source.index("def init_w") :]
    code = "\n".join(line.split("#", 1)[0] for line in body.splitlines())  # commented-out lines create nothing
    names = set(re.findall(r"[vw]\['(\w+)'\]\s*=", code))
    if re.search(r"[vw]\['[wb]'\s*\+\s*str\(i\)\]", code):
        names |= {"w<i>", "b<i>"}
    return {"w<i>" if re.fullmatch(r"w\d+", n) else "b<i>" if re.fullmatch(r"b\d+", n) else n for n in names}


def save_ndict(d: dict[str, np.ndarray], path: Path) -> None:
    """Write ``d`` as the original's ndict.savez does: arrays.npz (sorted keys, positional) + names.txt, tar.gz."""
    keys = sorted(d)
    arrays = io.BytesIO()
    np.savez(arrays, *[d[k] for k in keys])
    names = "".join(f"{k}\n" for k in keys).encode()
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (("arrays.npz", arrays.getvalue()), ("names.txt", names)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def random_params(rng: np.random.Generator, bands: int, hidden: list[int], latent: int, likelihood: str):  # noqa: ANN201
    """(v, w) in the original's layout, float32 as the original stores them."""

    def rand(out: int, fan_in: int) -> np.ndarray:
        return (rng.normal(0, 1, (out, fan_in)) / np.sqrt(fan_in)).astype(np.float32)

    def bias(out: int, sd: float = 0.1) -> np.ndarray:
        return rng.normal(0, sd, (out, 1)).astype(np.float32)

    v, w = {}, {}
    prev = bands
    for i, h in enumerate(hidden):
        v[f"w{i}"], v[f"b{i}"], prev = rand(h, prev), bias(h), h
    v["mean_w"], v["mean_b"] = rand(latent, prev), bias(latent)
    v["logvar_w"], v["logvar_b"] = 0.3 * rand(latent, prev), bias(latent, 0.3) - 1.0
    prev = latent
    for i, h in enumerate(hidden[::-1]):
        w[f"w{i}"], w[f"b{i}"], prev = rand(h, prev), bias(h), h
    w["out_w"], w["out_b"] = rand(bands, prev), bias(bands)
    if likelihood == "gaussian":
        w["out_logvar_w"], w["out_logvar_b"] = 0.3 * rand(bands, prev), bias(bands, 0.3) - 2.0
    if likelihood == "bounded01":
        w["out_logvar_b"], w["out_unif"] = bias(bands, 0.3) - 3.0, bias(bands, 0.5) - 2.0
    return v, w


def original_equations(v: dict, w: dict, x: np.ndarray, eps: np.ndarray, likelihood: str, activation: str) -> dict:
    """GPUVAE_Z_X.factors as written, in float64; x (n_x, n) and eps (n_z, n) are column vectors."""
    f = {"softplus": lambda a: np.log(np.exp(a) + 1), "tanh": np.tanh, "rectlin": lambda a: a * (a > 0)}[activation]
    v = {k: a.astype(np.float64) for k, a in v.items()}
    w = {k: a.astype(np.float64) for k, a in w.items()}
    x, eps = x.astype(np.float64), eps.astype(np.float64)
    A = np.ones((1, x.shape[1]))
    h = x
    for i in range(sum(1 for k in v if re.fullmatch(r"w\d+", k))):
        h = f(v[f"w{i}"].dot(h) + v[f"b{i}"].dot(A))
    q_mean = v["mean_w"].dot(h) + v["mean_b"].dot(A)
    q_logvar = v["logvar_w"].dot(h) + v["logvar_b"].dot(A)
    z = q_mean + np.exp(0.5 * q_logvar) * eps
    h = z
    for i in range(sum(1 for k in w if re.fullmatch(r"w\d+", k))):
        h = f(w[f"w{i}"].dot(h) + w[f"b{i}"].dot(A))
    c = -0.5 * np.log(2 * np.pi)

    def normal2(x_, mean, logvar):
        return c - logvar / 2 - (x_ - mean) ** 2 / (2 * np.exp(logvar))

    out = {"q_mean": q_mean, "q_logvar": q_logvar}
    if likelihood == "bernoulli":
        p = 1 / (1 + np.exp(-(w["out_w"].dot(h) + w["out_b"].dot(A))))
        logpx = x * np.log(p) + (1 - x) * np.log(1 - p)
        out["p"] = p
    elif likelihood == "gaussian":
        x_mean = w["out_w"].dot(h) + w["out_b"].dot(A)
        x_logvar = w["out_logvar_w"].dot(h) + w["out_logvar_b"].dot(A)
        logpx = normal2(x, x_mean, x_logvar)
        out["x_mean"], out["x_logvar"] = x_mean, x_logvar
    else:
        x_mean = 1 / (1 + np.exp(-(w["out_w"].dot(h) + w["out_b"].dot(A))))
        x_logvar = w["out_logvar_b"].dot(A)
        w_unif = 1 / (1 + np.exp(-w["out_unif"].dot(A)))
        logpx = np.log(w_unif + (1 - w_unif) * np.exp(normal2(x, x_mean, x_logvar)))
        out["x_mean"], out["x_logvar"] = x_mean, x_logvar
    logpz = -0.5 * (np.log(2 * np.pi) + (q_mean**2 + np.exp(q_logvar))).sum(axis=0, keepdims=True)
    logqz = -0.5 * (np.log(2 * np.pi) + 1 + q_logvar).sum(axis=0, keepdims=True)
    out["bound"] = np.ones((1, x.shape[0])).dot(logpx) + logpz - logqz
    return {k: a.T for k, a in out.items()}  # rows = pixels, as this package has them


@torch.no_grad()
def package_outputs(model: M1, x: np.ndarray, eps: np.ndarray) -> dict:
    """The same quantities from the imported model (x, eps: one pixel per row)."""
    xt, et = torch.from_numpy(x.T.copy()), torch.from_numpy(eps.T.copy())
    xn = model.normalize(xt)
    mean, logvar = model.encode(xn)
    params = model.decode(mean + (0.5 * logvar).exp() * et)
    out = {"q_mean": mean, "q_logvar": logvar}
    if "logits" in params:
        out["p"] = torch.sigmoid(params["logits"])
    else:
        out["x_mean"], out["x_logvar"] = params["mean"], params["logvar"]
    out["bound"] = (model.log_px(xn, params) - gaussian_kl(mean, logvar))[:, None]
    return {k: t.double().numpy() for k, t in out.items()}


def run_cli(source: Path, output: Path, activation: str) -> tuple[int, str]:
    """`import-original SOURCE -o OUTPUT --activation A` in a subprocess (the click command itself)."""
    code = "from m1_hyperspectral.cli_import import import_original; import_original()"
    cmd = [sys.executable, "-c", code, str(source), "-o", str(output), "--activation", activation]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return done.returncode, (done.stdout + done.stderr).strip()


def digits_28(n: int) -> np.ndarray:
    """(784, n) MNIST-like inputs for the shipped MNIST model (MNIST itself is not in the checkout): scikit-learn's
    8×8 digits scaled to [0, 1], resized to 20×20 and centred on 28×28 as MNIST's digits are."""
    from PIL import Image
    from sklearn.datasets import load_digits

    images = load_digits().images[:n] / 16.0
    x = np.zeros((len(images), 28, 28), np.float32)
    for i, im in enumerate(images):
        small = Image.fromarray((im * 255).astype(np.uint8)).resize((20, 20), Image.BILINEAR)
        x[i, 4:24, 4:24] = np.asarray(small, np.float32) / 255.0
    return x.reshape(len(images), 784).T.copy()


def compare(name: str, v: dict, w: dict, source: Path, work: Path, likelihood: str, activation: str,
            n: int, seed: int, x: np.ndarray | None = None) -> dict:  # fmt: skip
    out_dir = work / f"model-{name}"
    rc, message = run_cli(source, out_dir, activation)
    if rc != 0:
        raise SystemExit(f"import-original failed for {name} (exit {rc}): {message}")
    model = M1.from_pretrained(out_dir).eval()
    rng = np.random.default_rng(seed)
    bands, latent = v["w0"].shape[1], v["mean_w"].shape[0]
    inputs = "uniform [0, 1]" if x is None else "scikit-learn digits on 28x28"
    x = rng.uniform(0, 1, (bands, n)).astype(np.float32) if x is None else x
    n = x.shape[1]
    eps = rng.standard_normal((latent, n)).astype(np.float32)
    ref = original_equations(v, w, x, eps, likelihood, activation)
    got = package_outputs(model, x, eps)
    diffs = {k: float(np.abs(got[k] - ref[k]).max()) for k in ref if k != "bound"}
    rel = float((np.abs(got["bound"] - ref["bound"]) / np.abs(ref["bound"])).max())
    row = {
        "case": name, "likelihood": likelihood, "activation": activation, "bands": int(bands),
        "hidden": [int(v[f"w{i}"].shape[0]) for i in range(2)], "latent": int(latent), "pixels": n, "inputs": inputs,
        "cli": message.replace(str(work), "<tmp>"), "max_abs_diff": diffs, "max_abs_diff_all": max(diffs.values()),
        "bound_max_rel_diff": rel, "bound_mean_nats": float(ref["bound"].mean()),
    }  # fmt: skip
    print(f"{name:28s} max|diff| {row['max_abs_diff_all']:.2e}  bound rel {rel:.1e}", file=sys.stderr)
    return row


def main() -> None:
    """Convert, compare and write benchmarks/results/m1_import_vs_reference.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="A checkout of dpkingma/nips14-ssl.")
    parser.add_argument("--bands", type=int, default=200, help="Input size of the random models (Indian Pines: 200).")
    parser.add_argument("--pixels", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "m1_import_vs_reference.json"
    )
    args = parser.parse_args()
    if not (args.reference / "anglepy" / "models" / "GPUVAE_Z_X.py").is_file():
        raise SystemExit(f"{args.reference} has no anglepy/models/GPUVAE_Z_X.py: pass a checkout of nips14-ssl")

    from m1_hyperspectral.original import read_ndict

    names = reference_names(args.reference)
    known = {"w<i>", "b<i>", "mean_w", "mean_b", "logvar_w", "logvar_b", "out_w", "out_b", "out_logvar_w",
             "out_logvar_b", "out_unif"}  # fmt: skip
    refused = {"logv"} | {n for n in names if n.startswith("mog_")}
    unknown = sorted(names - known - refused)
    rows = []
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for likelihood in ("bernoulli", "gaussian", "bounded01"):
            for activation in ("softplus", "tanh"):
                name = f"random-{likelihood}-{activation}"
                v, w = random_params(rng, args.bands, [500, 500], 50, likelihood)
                run = work / name
                run.mkdir()
                save_ndict(v, run / "v_best.ndict.tar.gz")
                save_ndict(w, run / "w_best.ndict.tar.gz")
                rows.append(compare(name, v, w, run, work, likelihood, activation, args.pixels, args.seed))
        shipped = args.reference / SHIPPED
        if (shipped / "v_best.ndict.tar.gz").is_file() and (shipped / "w_best.ndict.tar.gz").is_file():
            v, w = read_ndict(shipped / "v_best.ndict.tar.gz"), read_ndict(shipped / "w_best.ndict.tar.gz")
            rows.append(compare("shipped-mnist-50-500-500", v, w, shipped, work, "bernoulli", "softplus",
                                args.pixels, args.seed, digits_28(args.pixels)))  # fmt: skip
    result = {
        "benchmark": "m1_import_vs_reference",
        "reference": str(args.reference),
        "reference_init_w_names": sorted(names),
        "names_unknown_to_converter": unknown,
        "names_refused_on_purpose": sorted(refused),
        "rows": rows,
        "max_abs_diff": max(r["max_abs_diff_all"] for r in rows),
        "bound_max_rel_diff": max(r["bound_max_rel_diff"] for r in rows),
        "shipped_model_found": any(r["case"].startswith("shipped") for r in rows),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if unknown or result["max_abs_diff"] > 1e-5:
        raise SystemExit(f"FAILED: unknown names {unknown}, max abs diff {result['max_abs_diff']:.2e}")


if __name__ == "__main__":
    main()
