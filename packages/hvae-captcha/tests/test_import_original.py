"""hvae-captcha import-original: the original project's state_dict (Anzarts/ProyectoMSD7203) -> a model folder.

The synthetic state dicts are written here from the original's layout as documented in hvae_captcha/original.py
(key names, spectral-norm triples, flat Sequential indices), for a tiny configuration given with --set.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from click.testing import CliRunner

from hvae_captcha.cli import main
from hvae_captcha.original import import_config, import_original
from hvae_captcha.runs import load_model

TINY = [
    "model.height=8", "model.width=12", "model.latent_dim=4", "model.inner_size=[4, 4]",
    'model.outer_config=[["conv-bn", 2], ["pool", 2], ["conv", 3]]',
    'model.inner_config=[[["conv-bn", 2], ["skip-up", 0], ["pool", 2], ["conv", 2], ["upsample", 2], '
    '["skip-down", 0], ["conv-bn", 1]]]',
]  # fmt: skip


def _original_state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}

    def rnd(*shape: int, scale: float = 0.5) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * scale

    def layer(prefix: str, shape: tuple[int, ...], sn: bool, outputs: int | None = None) -> None:
        state[f"{prefix}.bias"] = rnd(outputs or shape[0], scale=0.1)  # ConvTranspose2d: weight (in, out, k, k)
        if sn:  # torch.nn.utils.spectral_norm's triple; u, v unit vectors
            state[f"{prefix}.weight_orig"] = rnd(*shape)
            u, v = rnd(shape[0]), rnd(int(torch.tensor(shape[1:]).prod()))
            state[f"{prefix}.weight_u"], state[f"{prefix}.weight_v"] = u / u.norm(), v / v.norm()
        else:
            state[f"{prefix}.weight"] = rnd(*shape)

    def bn(prefix: str, c: int) -> None:
        state.update({f"{prefix}.weight": rnd(c).abs() + 0.5, f"{prefix}.bias": rnd(c, scale=0.1),
                      f"{prefix}.running_mean": rnd(c, scale=0.1), f"{prefix}.running_var": rnd(c).abs() + 0.5,
                      f"{prefix}.num_batches_tracked": torch.tensor(7)})  # fmt: skip

    # encoder.0: conv-bn 2 (0, 1, act 2), pool (3), conv 3 (4, act 5), output_fc (6): flatten 3·4·6 -> 8 -> 8
    layer("encoder.0.0", (2, 3, 3, 3), True), bn("encoder.0.1", 2), layer("encoder.0.4", (3, 2, 3, 3), True)
    layer("encoder.0.6.1", (8, 72), True), layer("encoder.0.6.3", (8, 8), True)
    for part, sn in (("encoder.1", True), ("decoder.0", False)):  # the inner block, in both directions
        fc_sn = True  # the fully connected layers around it are normalised in the decoder too
        layer(f"{part}.0.0", (8, 4), fc_sn), layer(f"{part}.0.2", (16, 8), fc_sn)
        layer(f"{part}.1.block.0.0", (2, 1, 3, 3), sn), bn(f"{part}.1.block.0.1", 2)
        layer(f"{part}.1.block.3.0", (2, 2, 3, 3), sn)
        layer(f"{part}.1.block.5.0", (2, 4), False)  # skip-down: Linear(2 + 2, 2), never normalised
        layer(f"{part}.1.block.6.0", (1, 2, 3, 3), sn), bn(f"{part}.1.block.6.1", 1)
        layer(f"{part}.2.1", (8, 16), fc_sn), layer(f"{part}.2.3", (8, 8), fc_sn)
    for i in range(3):  # heads: 0, 1 inference (normalised), 2 generation
        layer(f"mu_layers.{i}", (4, 8), i < 2), layer(f"lv_layers.{i}", (4, 8), i < 2)
    # reconstruction: input_fc, ConvT(3->2) + act, Upsample(to 8×12), ConvT(2->3) + sigmoid
    layer("decoder.1.0.0", (8, 4), False), layer("decoder.1.0.2", (72, 8), False)
    layer("decoder.1.1", (3, 2, 3, 3), False, 2), layer("decoder.1.4", (2, 3, 3, 3), False, 3)
    return state


def _save(tmp_path, state, name="HVAE.pt"):  # noqa: ANN001, ANN202
    path = tmp_path / name
    torch.save(state, path)
    return path


def _sn(state, prefix):  # noqa: ANN001, ANN202 - the weight an eval-mode spectral norm uses
    w, u, v = state[f"{prefix}.weight_orig"], state[f"{prefix}.weight_u"], state[f"{prefix}.weight_v"]
    return w / torch.dot(u, w.reshape(len(w), -1) @ v)


def test_outputs_match_an_independent_computation(tmp_path):
    state = _original_state()
    import_original(_save(tmp_path, state), tmp_path / "model", TINY)
    model = load_model(tmp_path / "model")
    assert model.config.logvar_bound == 0 and model.config.spectral_norm_scope == "original"
    g = torch.Generator().manual_seed(1)
    x01 = torch.rand(2, 3, 8, 12, generator=g)
    s = state

    def bn(h, p):  # noqa: ANN001, ANN202
        return F.batch_norm(h, s[f"{p}.running_mean"], s[f"{p}.running_var"], s[f"{p}.weight"], s[f"{p}.bias"])

    with torch.no_grad():
        h = F.relu(bn(F.conv2d(x01, _sn(s, "encoder.0.0"), s["encoder.0.0.bias"], padding=1), "encoder.0.1"))
        h = F.relu(F.conv2d(F.max_pool2d(h, 2), _sn(s, "encoder.0.4"), s["encoder.0.4.bias"], padding=1))
        h = F.relu(F.linear(h.flatten(1), _sn(s, "encoder.0.6.1"), s["encoder.0.6.1.bias"]))
        h = F.relu(F.linear(h, _sn(s, "encoder.0.6.3"), s["encoder.0.6.3.bias"]))
        mu1 = F.linear(h, _sn(s, "mu_layers.0"), s["mu_layers.0.bias"])
        lv1 = F.linear(h, _sn(s, "lv_layers.0"), s["lv_layers.0.bias"])
        bu = model.bottom_up(x01 * 2 - 1)
        assert torch.allclose(bu[0][0], mu1, atol=1e-6) and torch.allclose(bu[0][1], lv1, atol=1e-6)
        # the output block from a given z1: input_fc, ConvT + ReLU, upsample to 8×12, ConvT + sigmoid
        z1 = torch.randn(2, 4, generator=g)
        h = F.relu(F.linear(F.relu(F.linear(z1, s["decoder.1.0.0.weight"], s["decoder.1.0.0.bias"])),
                            s["decoder.1.0.2.weight"], s["decoder.1.0.2.bias"])).view(2, 3, 4, 6)  # fmt: skip
        h = F.relu(F.conv_transpose2d(h, s["decoder.1.1.weight"], s["decoder.1.1.bias"], padding=1))
        h = F.conv_transpose2d(F.interpolate(h, size=(8, 12)), s["decoder.1.4.weight"], s["decoder.1.4.bias"],
                               padding=1)  # fmt: skip
        got = model.mean_image(model.out_block(model.out_in(z1)))
        assert torch.allclose(got, torch.sigmoid(h), atol=1e-6)
        # the same noise gives the same prior sample twice
        noise = [torch.randn(2, 4, generator=g), torch.randn(2, 4, generator=g)]
        a, _ = model.top_down(2, None, noise=noise)
        b, _ = model.top_down(2, None, noise=noise)
        assert torch.equal(a, b)


def test_cli_import_then_sample(tmp_path):
    pt = _save(tmp_path, _original_state())
    runner = CliRunner()
    sets = [a for t in TINY for a in ("--set", t)]
    res = runner.invoke(main, ["import-original", str(pt), "-o", str(tmp_path / "m"), *sets])
    assert res.exit_code == 0, res.output
    assert {p.name for p in (tmp_path / "m").iterdir()} >= {"config.json", "model.safetensors", "run_config.json"}
    res = runner.invoke(main, ["sample", str(tmp_path / "m"), "-n", "2", "-o", str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "s.png").is_file()
    # an earlier output is replaced only with --overwrite; a foreign non-empty folder never
    res = runner.invoke(main, ["import-original", str(pt), "-o", str(tmp_path / "m"), *sets])
    assert res.exit_code == 2 and "--overwrite" in res.output
    res = runner.invoke(main, ["import-original", str(pt), "-o", str(tmp_path / "m"), *sets, "--overwrite"])
    assert res.exit_code == 0, res.output
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    res = runner.invoke(main, ["import-original", str(pt), "-o", str(tmp_path / "other"), *sets, "--overwrite"])
    assert res.exit_code == 2 and (tmp_path / "other" / "notes.txt").read_text() == "mine"


def _import_error(tmp_path, state) -> str:  # noqa: ANN001
    sets = [a for t in TINY for a in ("--set", t)]
    res = CliRunner().invoke(main, ["import-original", str(_save(tmp_path, state)), "-o", str(tmp_path / "m"), *sets])
    assert res.exit_code == 2, res.output
    assert not (tmp_path / "m").exists()
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    return res.output


def test_unknown_missing_and_wrong_shape_keys(tmp_path):
    state = _original_state()
    assert "unknown key encoder.0.99.weight" in _import_error(tmp_path, {**state, "encoder.0.99.weight": torch.ones(1)})
    del state["decoder.0.1.block.5.0.weight"]
    assert "missing key decoder.0.1.block.5.0.weight" in _import_error(tmp_path, state)
    state = _original_state()
    state["mu_layers.2.weight"] = torch.zeros(4, 9)
    out = _import_error(tmp_path, state)
    assert "mu_layers.2.weight has shape (4, 9), expected (4, 8)" in out
    state = {**_original_state(), "projector_label.0.weight": torch.zeros(4, 28)}
    assert "conditioned" in _import_error(tmp_path, state)


class Pickled(torch.nn.Module):
    """A stand-in for the original's HVAE saved whole: loading it would need this class (and run its code)."""

    ran = False

    def __setstate__(self, state):  # noqa: ANN001
        Pickled.ran = True
        super().__setstate__(state)


def test_whole_module_pickle_refused_without_running_it(tmp_path):
    torch.save(Pickled(), tmp_path / "whole.pt")
    res = CliRunner().invoke(main, ["import-original", str(tmp_path / "whole.pt"), "-o", str(tmp_path / "m")])
    assert res.exit_code == 2 and "state_dict" in res.output and "whole pickled module" in res.output
    assert not Pickled.ran and not (tmp_path / "m").exists()


def test_default_config_is_the_original_preset_plus_exact_variants():
    m = import_config().model
    assert (m.channels, m.height, m.width, m.latent, m.latent_dim, m.conditioned) == (3, 50, 250, "vector", 512, False)
    assert (m.input_range, m.output_upsample, m.logvar_bound) == ("unit", "scale", 0)
