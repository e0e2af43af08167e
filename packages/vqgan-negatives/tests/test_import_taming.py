"""`import-taming`: taming-transformers checkpoints (key names and shapes built here by hand) -> model folders.

The reference forwards below are written from taming's documented layout (GroupNorm(32, eps 1e-6) + swish
residual blocks, single-head attention with separate q/k/v 1x1 convs, downsampling by a (0, 1, 0, 1) zero pad
and a stride-2 conv, nearest upsampling + conv, the nearest code by squared distance, "legacy" codebook loss,
minGPT with separate key/query/value), independently of this package's modules.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from vqgan_negatives.cli_import import import_taming
from vqgan_negatives.sample import generate, load_pipeline
from vqgan_negatives.train_transformer import load_vqgan

TINY = dict(ch=8, ch_mult=(1, 2), num_res_blocks=1, attn=(4,), resolution=8, in_channels=1, z=8, dim=4, n=16)
# channels in multiples of 32, as taming's GroupNorm(32) needs: the reference forward runs on this one
WIDE = dict(ch=32, ch_mult=(1, 2), num_res_blocks=1, attn=(4,), resolution=8, in_channels=3, z=32, dim=8, n=24)


def first_stage_state(spec: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Weights of taming's VQModel (no loss) under its key names, random."""
    gen = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def conv(name: str, c_out: int, c_in: int, k: int) -> None:
        sd[f"{name}.weight"] = torch.randn(c_out, c_in, k, k, generator=gen) / (c_in * k * k) ** 0.5
        sd[f"{name}.bias"] = 0.1 * torch.randn(c_out, generator=gen)

    def norm(name: str, c: int) -> None:
        sd[f"{name}.weight"] = 1 + 0.1 * torch.randn(c, generator=gen)
        sd[f"{name}.bias"] = 0.1 * torch.randn(c, generator=gen)

    def block(name: str, c_in: int, c_out: int) -> None:
        norm(f"{name}.norm1", c_in)
        conv(f"{name}.conv1", c_out, c_in, 3)
        norm(f"{name}.norm2", c_out)
        conv(f"{name}.conv2", c_out, c_out, 3)
        if c_in != c_out:
            conv(f"{name}.nin_shortcut", c_out, c_in, 1)

    def attn(name: str, c: int) -> None:
        norm(f"{name}.norm", c)
        for part in ("q", "k", "v", "proj_out"):
            conv(f"{name}.{part}", c, c, 1)

    def middle(part: str, c: int) -> None:
        block(f"{part}.mid.block_1", c, c)
        attn(f"{part}.mid.attn_1", c)
        block(f"{part}.mid.block_2", c, c)

    ch, mult, nrb = spec["ch"], spec["ch_mult"], spec["num_res_blocks"]
    conv("encoder.conv_in", ch, spec["in_channels"], 3)
    c, res = ch, spec["resolution"]
    for i, m in enumerate(mult):
        for j in range(nrb):
            block(f"encoder.down.{i}.block.{j}", c, ch * m)
            c = ch * m
            if res in spec["attn"]:
                attn(f"encoder.down.{i}.attn.{j}", c)
        if i < len(mult) - 1:
            conv(f"encoder.down.{i}.downsample.conv", c, c, 3)
            res //= 2
    middle("encoder", c)
    norm("encoder.norm_out", c)
    conv("encoder.conv_out", spec["z"], c, 3)
    conv("quant_conv", spec["dim"], spec["z"], 1)
    sd["quantize.embedding.weight"] = torch.randn(spec["n"], spec["dim"], generator=gen)
    conv("post_quant_conv", spec["z"], spec["dim"], 1)
    c = ch * mult[-1]
    conv("decoder.conv_in", c, spec["z"], 3)
    middle("decoder", c)
    for i in reversed(range(len(mult))):
        for j in range(nrb + 1):
            block(f"decoder.up.{i}.block.{j}", c, ch * mult[i])
            c = ch * mult[i]
            if res in spec["attn"]:
                attn(f"decoder.up.{i}.attn.{j}", c)
        if i > 0:
            conv(f"decoder.up.{i}.upsample.conv", c, c, 3)
            res *= 2
    norm("decoder.norm_out", c)
    conv("decoder.conv_out", spec["in_channels"], c, 3)
    return sd


def discriminator_state(in_channels: int, ndf: int = 4, n_layers: int = 2) -> dict[str, torch.Tensor]:
    """taming's NLayerDiscriminator (BatchNorm) under ``loss.discriminator.main.N``."""
    sd, idx, mult = {}, 0, 1
    p = "loss.discriminator.main"
    sd[f"{p}.0.weight"], sd[f"{p}.0.bias"] = torch.randn(ndf, in_channels, 4, 4), torch.randn(ndf)
    idx = 2
    for n in range(1, n_layers + 1):
        prev, mult = mult, min(2**n, 8)
        sd[f"{p}.{idx}.weight"] = torch.randn(ndf * mult, ndf * prev, 4, 4) * 0.1
        bn = f"{p}.{idx + 1}"
        sd[f"{bn}.weight"], sd[f"{bn}.bias"] = torch.rand(ndf * mult) + 0.5, torch.randn(ndf * mult)
        sd[f"{bn}.running_mean"], sd[f"{bn}.running_var"] = torch.randn(ndf * mult), torch.rand(ndf * mult) + 0.5
        sd[f"{bn}.num_batches_tracked"] = torch.tensor(7)
        idx += 3
    sd[f"{p}.{idx}.weight"], sd[f"{p}.{idx}.bias"] = torch.randn(1, ndf * mult, 4, 4) * 0.1, torch.randn(1)
    return sd


def gpt_state(vocab: int, block: int, n_layer: int = 2, n_embd: int = 16, seed: int = 1) -> dict[str, torch.Tensor]:
    """taming's minGPT under ``transformer.*`` (with its causal-mask buffers)."""
    gen = torch.Generator().manual_seed(seed)
    r = lambda *shape: 0.2 * torch.randn(*shape, generator=gen)  # noqa: E731
    p = "transformer"
    sd = {f"{p}.tok_emb.weight": r(vocab, n_embd), f"{p}.pos_emb": r(1, block, n_embd),
          f"{p}.ln_f.weight": 1 + r(n_embd), f"{p}.ln_f.bias": r(n_embd),
          f"{p}.head.weight": r(vocab, n_embd)}  # fmt: skip
    for i in range(n_layer):
        b = f"{p}.blocks.{i}"
        for ln in ("ln1", "ln2"):
            sd[f"{b}.{ln}.weight"], sd[f"{b}.{ln}.bias"] = 1 + r(n_embd), r(n_embd)
        for lin in ("key", "query", "value", "proj"):
            sd[f"{b}.attn.{lin}.weight"], sd[f"{b}.attn.{lin}.bias"] = r(n_embd, n_embd), r(n_embd)
        sd[f"{b}.attn.mask"] = torch.tril(torch.ones(block, block)).view(1, 1, block, block)
        sd[f"{b}.mlp.0.weight"], sd[f"{b}.mlp.0.bias"] = r(4 * n_embd, n_embd), r(4 * n_embd)
        sd[f"{b}.mlp.2.weight"], sd[f"{b}.mlp.2.bias"] = r(n_embd, 4 * n_embd), r(n_embd)
    return sd


def net2net_state(spec: dict, **gpt) -> dict[str, torch.Tensor]:
    fs = first_stage_state(spec)
    side = spec["resolution"] // 2 ** (len(spec["ch_mult"]) - 1)
    state = gpt_state(spec["n"], gpt.pop("block", 2 * side * side), **gpt)
    state.update({f"first_stage_model.{k}": v for k, v in fs.items()})
    state.update({f"cond_stage_model.{k}": v for k, v in fs.items()})
    return state


def save_ckpt(path: Path, state: dict, **extra) -> Path:
    torch.save({"state_dict": state, "epoch": 1, "global_step": 10, **extra}, path)
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(import_taming, [str(a) for a in args])
    return result.exit_code, result.output


# --- independent reference forwards ------------------------------------------------------------------------


def reference_first_stage(sd: dict, x: torch.Tensor, beta: float = 0.25):
    """(reconstruction, codebook loss, indices) as taming's VQModel computes them."""
    swish = lambda h: h * torch.sigmoid(h)  # noqa: E731

    def gn(h, p):
        return F.group_norm(h, 32, sd[f"{p}.weight"], sd[f"{p}.bias"], eps=1e-6)

    def conv(h, p, stride=1, pad=1):
        return F.conv2d(h, sd[f"{p}.weight"], sd[f"{p}.bias"], stride, pad)

    def block(h, p):
        t = conv(swish(gn(h, f"{p}.norm1")), f"{p}.conv1")
        t = conv(swish(gn(t, f"{p}.norm2")), f"{p}.conv2")
        return (conv(h, f"{p}.nin_shortcut", pad=0) if f"{p}.nin_shortcut.weight" in sd else h) + t

    def attn(h, p):
        t = gn(h, f"{p}.norm")
        q, k, v = (conv(t, f"{p}.{n}", pad=0).flatten(2) for n in "qkv")
        w = torch.softmax(torch.einsum("bci,bcj->bij", q, k) / q.shape[1] ** 0.5, dim=2)
        return h + conv(torch.einsum("bij,bcj->bci", w, v).view(h.shape), f"{p}.proj_out", pad=0)

    def levels(part):
        return sorted({int(k.split(".")[2]) for k in sd if k.startswith(f"{part}.")})

    def stage(h, p):
        for j in sorted({int(k.split(".")[4]) for k in sd if k.startswith(f"{p}.block.")}):
            h = block(h, f"{p}.block.{j}")
            if f"{p}.attn.{j}.q.weight" in sd:
                h = attn(h, f"{p}.attn.{j}")
        return h

    def middle(h, part):
        return block(attn(block(h, f"{part}.mid.block_1"), f"{part}.mid.attn_1"), f"{part}.mid.block_2")

    h = conv(x, "encoder.conv_in")
    for i in levels("encoder.down"):
        h = stage(h, f"encoder.down.{i}")
        if f"encoder.down.{i}.downsample.conv.weight" in sd:
            h = conv(F.pad(h, (0, 1, 0, 1)), f"encoder.down.{i}.downsample.conv", stride=2, pad=0)
    h = conv(swish(gn(middle(h, "encoder"), "encoder.norm_out")), "encoder.conv_out")
    z = conv(h, "quant_conv", pad=0)
    flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    codes = sd["quantize.embedding.weight"]
    idx = ((flat[:, None] - codes[None]) ** 2).sum(-1).argmin(1)
    zq = codes[idx].view(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
    loss = ((zq - z) ** 2).mean() + beta * ((zq - z) ** 2).mean()
    h = conv(conv(zq, "post_quant_conv", pad=0), "decoder.conv_in")
    h = middle(h, "decoder")
    for i in reversed(levels("decoder.up")):
        h = stage(h, f"decoder.up.{i}")
        if f"decoder.up.{i}.upsample.conv.weight" in sd:
            h = conv(F.interpolate(h, scale_factor=2.0, mode="nearest"), f"decoder.up.{i}.upsample.conv")
    rec = conv(swish(gn(h, "decoder.norm_out")), "decoder.conv_out")
    return rec, loss, idx.view(z.shape[0], z.shape[2], z.shape[3])


def reference_gpt(sd: dict, idx: torch.Tensor, n_head: int) -> torch.Tensor:
    """Logits of taming's minGPT for token ids ``idx`` (B, T)."""
    p = "transformer"
    t = idx.shape[1]
    x = sd[f"{p}.tok_emb.weight"][idx] + sd[f"{p}.pos_emb"][:, :t]
    c = x.shape[-1]

    def lin(h, name):
        return F.linear(h, sd[f"{name}.weight"], sd.get(f"{name}.bias"))

    def ln(h, name):
        return F.layer_norm(h, (c,), sd[f"{name}.weight"], sd[f"{name}.bias"])

    n_layer = len({k.split(".")[2] for k in sd if k.startswith(f"{p}.blocks.")})
    for i in range(n_layer):
        b = f"{p}.blocks.{i}"
        h = ln(x, f"{b}.ln1")
        q, k, v = (lin(h, f"{b}.attn.{n}").view(len(x), t, n_head, -1).transpose(1, 2)
                   for n in ("query", "key", "value"))  # fmt: skip
        att = (q @ k.transpose(-2, -1)) / q.shape[-1] ** 0.5
        att = att.masked_fill(torch.tril(torch.ones(t, t)) == 0, float("-inf")).softmax(-1)
        x = x + lin((att @ v).transpose(1, 2).reshape(len(x), t, c), f"{b}.attn.proj")
        x = x + lin(F.gelu(lin(ln(x, f"{b}.ln2"), f"{b}.mlp.0")), f"{b}.mlp.2")
    return F.linear(ln(x, f"{p}.ln_f"), sd[f"{p}.head.weight"])


# --- first stage ---------------------------------------------------------------------------------------------


def test_first_stage_gives_taming_outputs(tmp_path: Path) -> None:
    sd = first_stage_state(WIDE)
    ckpt = save_ckpt(tmp_path / "last.ckpt", sd)
    code, out = run(ckpt, "-o", tmp_path / "model", "--resolution", 8)
    assert code == 0, out
    assert "inferred from the weights" in out and "ch_mult=(1, 2)" in out and "attn_resolutions=(4,)" in out
    vq = load_vqgan(tmp_path / "model")
    q = vq.config.quantizer
    assert (q.l2_normalize, q.beta_on_codebook, vq.config.asymmetric_downsample) == (False, True, True)
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        rec_ref, loss_ref, idx_ref = reference_first_stage(sd, x)
        rec, loss, idx = vq(x)
    assert torch.equal(idx, idx_ref)
    assert (rec - rec_ref).abs().max() < 1e-5
    assert abs(float(loss) - float(loss_ref)) < 1e-6


def test_keys_round_trip(tmp_path: Path) -> None:
    """Every taming tensor lands in the model; q|k|v become one convolution; nothing else is invented."""
    from vqgan_negatives.taming_import import vq_key_map

    sd = {**first_stage_state(TINY), **discriminator_state(1)}
    ckpt = save_ckpt(tmp_path / "vq.ckpt", sd)
    assert run(ckpt, "-o", tmp_path / "m", "--resolution", 8)[0] == 0
    vq = load_vqgan(tmp_path / "m")
    ours = vq.state_dict()
    key_map = vq_key_map(vq.config)
    covered = {t for theirs in key_map.values() for t in theirs}
    assert covered == {k for k in sd if not k.startswith("loss.")}
    for mine, theirs in key_map.items():
        assert torch.equal(ours[mine], torch.cat([sd[t] for t in theirs])), mine
    from vqgan_negatives.model import PatchDiscriminator

    disc = PatchDiscriminator.from_pretrained(tmp_path / "m" / "discriminator").state_dict()
    assert {f"loss.discriminator.main.{k[4:]}" for k in disc} == {k for k in sd if k.startswith("loss.")}
    for k, v in disc.items():
        assert torch.equal(v, sd[f"loss.discriminator.main.{k[4:]}"])
    record = json.loads((tmp_path / "m" / "import.json").read_text())
    assert record["kind"] == "vqgan" and set(record["models"]) == {"vqgan", "discriminator"}


def test_yaml_config_and_lightning_extras(tmp_path: Path) -> None:
    """A taming yaml gives the architecture; Lightning's other entries, even objects, are skipped with a note."""
    yaml = tmp_path / "custom_vqgan.yaml"
    yaml.write_text(
        "model:\n  target: taming.models.vqgan.VQModel\n  params:\n    embed_dim: 4\n    n_embed: 16\n"
        "    ddconfig:\n      double_z: False\n      z_channels: 8\n      resolution: 8\n      in_channels: 1\n"
        "      out_ch: 1\n      ch: 8\n      ch_mult: [1, 2]\n      num_res_blocks: 1\n      attn_resolutions: [4]\n"
        "      dropout: 0.1\n    lossconfig:\n"
        "      target: taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator\n"
        "      params: {disc_start: 10, disc_in_channels: 1, disc_num_layers: 2, disc_ndf: 4}\n"
    )  # fmt: skip
    lpips = {"loss.perceptual_loss.lin0.model.1.weight": torch.ones(1)}
    sd = {**first_stage_state(TINY), **discriminator_state(1), **lpips}
    ckpt = save_ckpt(tmp_path / "vq.ckpt", sd, hyper_parameters=Path("not/a/tensor"), callbacks={"x": 1})
    code, out = run(ckpt, "--config", yaml, "-o", tmp_path / "m")
    assert code == 0, out
    assert "inferred" not in out
    assert "skipped unread" in out and "PosixPath" in out and "skipped loss.perceptual_loss.*" in out
    vq = load_vqgan(tmp_path / "m")
    assert vq.config.dropout == 0.1 and vq.config.attn_resolutions == (4,)
    # a yaml that contradicts the weights: the first key that does not fit is named
    yaml.write_text(yaml.read_text().replace("num_res_blocks: 1", "num_res_blocks: 2"))
    code, out = run(ckpt, "--config", yaml, "-o", tmp_path / "m2")
    assert code == 2 and out.startswith("error: ") and "missing key encoder.down.0.block.1" in out
    assert not (tmp_path / "m2").exists()


def test_unknown_key_is_one_line(tmp_path: Path) -> None:
    sd = {**first_stage_state(TINY), "encoder.down.0.block.0.temb_proj.weight": torch.zeros(8, 512)}
    code, out = run(save_ckpt(tmp_path / "a.ckpt", sd), "-o", tmp_path / "m", "--resolution", 8)
    assert code == 2 and out.count("\n") == 1
    assert "unknown key encoder.down.0.block.0.temb_proj.weight" in out


def test_wrong_shape_is_one_line(tmp_path: Path) -> None:
    sd = first_stage_state(TINY)
    sd["decoder.mid.block_1.conv2.weight"] = torch.zeros(16, 16, 1, 1)
    code, out = run(save_ckpt(tmp_path / "a.ckpt", sd), "-o", tmp_path / "m", "--resolution", 8)
    assert code == 2 and out.count("\n") == 1
    assert "decoder.mid.block_1.conv2.weight has shape (16, 16, 1, 1)" in out and "(16, 16, 3, 3)" in out


def test_missing_key_is_one_line(tmp_path: Path) -> None:
    sd = first_stage_state(TINY)
    del sd["decoder.up.1.attn.0.k.bias"]
    code, out = run(save_ckpt(tmp_path / "a.ckpt", sd), "-o", tmp_path / "m", "--resolution", 8)
    assert code == 2 and out.count("\n") == 1 and "missing key decoder.up.1.attn.0.k.bias" in out


def test_what_cannot_be_inferred_or_expressed(tmp_path: Path) -> None:
    ckpt = save_ckpt(tmp_path / "a.ckpt", first_stage_state(TINY))
    code, out = run(ckpt, "-o", tmp_path / "m")
    assert code == 2 and "resolution cannot be inferred" in out and out.count("\n") == 1
    gumbel = {k: v for k, v in first_stage_state(TINY).items() if not k.startswith("quantize.")}
    gumbel.update({"quantize.embed.weight": torch.zeros(16, 4), "quantize.proj.weight": torch.zeros(16, 8, 1, 1)})
    code, out = run(save_ckpt(tmp_path / "g.ckpt", gumbel), "-o", tmp_path / "m", "--resolution", 8)
    assert code == 2 and "quantize.embedding.weight" in out
    torch.save({"optimizer": torch.zeros(3)}, tmp_path / "other.pt")
    code, out = run(tmp_path / "other.pt", "-o", tmp_path / "m", "--resolution", 8)
    assert code == 2 and "neither a taming VQModel" in out
    code, out = run(tmp_path / "missing.ckpt", "-o", tmp_path / "m")
    assert code == 2 and "not found" in out


def test_output_folder_rule(tmp_path: Path) -> None:
    ckpt = save_ckpt(tmp_path / "a.ckpt", first_stage_state(TINY))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    code, out = run(ckpt, "-o", busy, "--resolution", 8)
    assert code == 2 and "notes.txt" in out and sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    out_dir = tmp_path / "model"
    assert run(ckpt, "-o", out_dir, "--resolution", 8)[0] == 0
    code, out = run(ckpt, "-o", out_dir, "--resolution", 8)
    assert code == 2 and "--overwrite" in out
    before = (out_dir / "vqgan" / "model.safetensors").read_bytes()
    sd2 = first_stage_state(TINY, seed=5)
    code, out = run(save_ckpt(tmp_path / "b.ckpt", sd2), "-o", out_dir, "--resolution", 8, "--overwrite")
    assert code == 0, out
    assert (out_dir / "vqgan" / "model.safetensors").read_bytes() != before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".tmp-", ".old-"))]


def test_legacy_beta_loss_and_asymmetric_padding_are_options() -> None:
    """Defaults unchanged; the taming values change the loss weighting and the downsampling only."""
    from vqgan_negatives.config import QuantizerConfig, VQModelConfig
    from vqgan_negatives.model import Downsample, VQModel
    from vqgan_negatives.quantize import VectorQuantizer

    assert VQModelConfig().stem_channels is None and not VQModelConfig().asymmetric_downsample
    assert not QuantizerConfig().beta_on_codebook
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    cfg = dict(codebook_size=8, codebook_dim=4, l2_normalize=False, restart_dead=False)
    paper = VectorQuantizer(QuantizerConfig(**cfg))
    legacy = VectorQuantizer(QuantizerConfig(**cfg, beta_on_codebook=True))
    legacy.load_state_dict(paper.state_dict())
    q1, l1, _ = paper(z)
    q2, l2, _ = legacy(z)
    assert torch.equal(q1, q2) and torch.allclose(l1, l2)  # forward: the two terms have the same value
    (g1,) = torch.autograd.grad(l1, paper.embedding)
    (g2,) = torch.autograd.grad(l2, legacy.embedding)
    assert torch.allclose(g2, 0.25 * g1)  # legacy: beta on the codebook term
    with pytest.raises(ValueError):
        QuantizerConfig(ema=True, beta_on_codebook=True)
    x = torch.randn(1, 2, 6, 6)
    sym, asym = Downsample(2), Downsample(2, asymmetric=True)
    asym.load_state_dict(sym.state_dict())
    assert sym(x).shape == asym(x).shape == (1, 2, 3, 3) and not torch.allclose(sym(x), asym(x))
    taming_like = VQModel(VQModelConfig(ch=8, ch_mult=(2, 2), resolution=8, stem_channels=8, z_channels=8))
    assert taming_like.encoder.conv_in.out_channels == 8
    assert set(taming_like.state_dict()) - set(VQModel(VQModelConfig(ch=8, ch_mult=(2, 2), resolution=8,
                                                                      z_channels=8)).state_dict()) == {
        "encoder.down.0.skip.weight", "encoder.down.0.skip.bias"}  # fmt: skip


# --- transformer ---------------------------------------------------------------------------------------------


def test_transformer_gives_taming_logits(tmp_path: Path) -> None:
    state = net2net_state(WIDE, block=40, n_embd=16)  # 4x4 codes: 32 positions used of 40
    ckpt = save_ckpt(tmp_path / "t.ckpt", state)
    code, out = run(ckpt, "-o", tmp_path / "prior", "--resolution", 8, "--n-head", 2)
    assert code == 0, out
    assert "position table cut from block_size 40 to 32" in out
    pipe = load_pipeline(tmp_path / "prior")
    assert (pipe.gpt.config.vocab_size, pipe.gpt.config.block_size, pipe.gpt.config.n_head) == (48, 32, 2)
    gen = torch.Generator().manual_seed(0)
    cond, target = torch.randint(0, 24, (3, 16), generator=gen), torch.randint(0, 24, (3, 16), generator=gen)
    with torch.no_grad():
        ref = reference_gpt(state, torch.cat([cond, target], 1)[:, :-1], n_head=2)[:, 15:]
        ours = pipe.gpt(cond, target[:, :-1])
    assert ours.shape == ref.shape == (3, 16, 24)
    assert (ours - ref).abs().max() < 1e-5
    images = generate(pipe.vq, pipe.gpt, torch.zeros(2, 3, 8, 8), top_k=5, seed=1)
    assert images.shape == (2, 3, 8, 8)
    code, out = run(ckpt, "-o", tmp_path / "p2", "--resolution", 8)
    assert code == 2 and "n_head cannot be inferred" in out


def test_transformer_conditioning_that_cannot_be_expressed(tmp_path: Path) -> None:
    state = net2net_state(TINY)
    other = first_stage_state(TINY, seed=9)
    state.update({f"cond_stage_model.{k}": v for k, v in other.items()})
    code, out = run(save_ckpt(tmp_path / "a.ckpt", state), "-o", tmp_path / "m", "--resolution", 8, "--n-head", 2)
    assert code == 2 and "another model than first_stage_model" in out and out.count("\n") == 1
    uncond = {k: v for k, v in net2net_state(TINY).items() if not k.startswith("cond_stage_model.")}
    code, out = run(save_ckpt(tmp_path / "b.ckpt", uncond), "-o", tmp_path / "m", "--resolution", 8, "--n-head", 2)
    assert code == 2 and "no cond_stage_model" in out
    yaml = tmp_path / "depth.yaml"
    yaml.write_text("model:\n  target: taming.models.cond_transformer.Net2NetTransformer\n  params:\n"
                    "    cond_stage_config:\n      target: taming.models.vqgan.VQModel\n")  # fmt: skip
    code, out = run(save_ckpt(tmp_path / "c.ckpt", net2net_state(TINY)), "--config", yaml, "-o", tmp_path / "m")
    assert code == 2 and "conditioning stage is taming.models.vqgan.VQModel" in out
    bigger_vocab = net2net_state(TINY)
    bigger_vocab["transformer.tok_emb.weight"] = torch.zeros(20, 16)
    ckpt = save_ckpt(tmp_path / "d.ckpt", bigger_vocab)
    code, out = run(ckpt, "-o", tmp_path / "m", "--resolution", 8, "--n-head", 2)
    assert code == 2 and "vocabulary has 20 tokens" in out
    assert not (tmp_path / "m").exists()


def test_cli_module_loads_no_torch() -> None:
    code = "import sys, vqgan_negatives.cli_import; print([m for m in ('torch', 'safetensors') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
