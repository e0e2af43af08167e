"""taming-transformers models imported with `vqgan-negatives import-taming`: same outputs as taming's own modules?

The reference is not part of this repository: pass a local checkout of CompVis/taming-transformers
(``--reference``). Its ``Encoder``/``Decoder`` (taming/modules/diffusionmodules/model.py), ``VectorQuantizer2``
(taming/modules/vqvae/quantize.py), ``NLayerDiscriminator`` (taming/modules/discriminator/model.py) and minGPT
``GPT`` (taming/modules/transformer/mingpt.py) are imported from it; its Lightning wrappers (``VQModel``,
``Net2NetTransformer``) need pytorch-lightning and are not, so this script assembles their state dicts under the
same key names (``encoder.*``, ``quantize.embedding.weight``, ``loss.discriminator.*``, ``transformer.*``,
``first_stage_model.*``, ``cond_stage_model.*``). mingpt.py imports ``transformers.top_k_top_p_filtering`` (used
only by its sampling helpers, not here); when the ``transformers`` package is absent a stand-in module that
defines only that name is put in ``sys.modules`` for this process.

For each configuration the script

1. builds taming's modules with random weights (every parameter and BatchNorm statistic random, the codebook drawn
   from encoder outputs so that the nearest-code search is not degenerate);
2. saves a checkpoint as Lightning does (``{"state_dict": ..., "epoch", "global_step", "callbacks",
   "hyper_parameters"}``; the hyper-parameters are an object of a class defined here, which the weights-only reader
   cannot rebuild, so the skip path is exercised) and the matching taming yaml;
3. converts it with the command twice, with ``--config`` and without (shapes + ``--resolution``/``--n-head``), in a
   subprocess (exit code checked), and loads the folders with this package's loaders;
4. runs both on the same input in float32 and compares (max abs difference): encoder output, code indices (count
   of differing ones), decoder output on the same codes, the full reconstruction, the codebook loss, discriminator
   logits, and the transformer's logits on the same [conditioning | target] codes.

    .venv/bin/python benchmarks/taming_vs_reference.py --reference /path/to/taming-transformers
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import torch
from torch import nn

from vqgan_negatives.model import PatchDiscriminator
from vqgan_negatives.sample import load_pipeline
from vqgan_negatives.train_transformer import load_vqgan

TOLERANCE = 1e-5

CONFIGS = {
    # taming's layout at a small size: GroupNorm(32) needs multiples of 32 channels
    "rgb32_attn": dict(ch=32, ch_mult=[1, 2, 2], num_res_blocks=2, attn_resolutions=[8], resolution=32, in_channels=3,
                       z_channels=64, embed_dim=16, n_embed=64, disc=dict(ndf=16, n_layers=3)),
    # first level wider than ch (taming's stem conv keeps ch), grey, attention only in the middle blocks
    "grey16_stem": dict(ch=32, ch_mult=[2, 2], num_res_blocks=1, attn_resolutions=[], resolution=16, in_channels=1,
                        z_channels=32, embed_dim=8, n_embed=32, disc=dict(ndf=8, n_layers=2)),
}  # fmt: skip
GPT = dict(n_layer=2, n_head=4, n_embd=64, extra_positions=6)


class HyperParameters:
    """What Lightning may store beside the weights: an object the weights-only reader refuses."""

    def __init__(self, **kw) -> None:
        self.__dict__.update(kw)


def import_reference(root: Path) -> dict[str, types.ModuleType]:
    try:
        import transformers  # noqa: F401
    except ImportError:
        stand_in = types.ModuleType("transformers")

        def top_k_top_p_filtering(*args, **kwargs):
            raise RuntimeError("the benchmark's stand-in for transformers.top_k_top_p_filtering was called")

        stand_in.top_k_top_p_filtering = top_k_top_p_filtering
        sys.modules["transformers"] = stand_in
    sys.path.insert(0, str(root))
    import importlib

    names = {
        "model": "taming.modules.diffusionmodules.model", "quantize": "taming.modules.vqvae.quantize",
        "disc": "taming.modules.discriminator.model", "mingpt": "taming.modules.transformer.mingpt",
    }  # fmt: skip
    return {k: importlib.import_module(v) for k, v in names.items()}


def randomise(module: nn.Module, gen: torch.Generator) -> None:
    """Every parameter and float buffer random (weights ~ N(0, 1/fan_in), norms' gains around 1)."""
    with torch.no_grad():
        for name, p in [*module.named_parameters(), *module.named_buffers()]:
            if not p.is_floating_point() or name.endswith("mask"):
                continue
            if name.endswith("running_var"):
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
            elif p.dim() == 1 and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = max(1, p[0].numel()) if p.dim() > 1 else 1
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in**0.5)


class TamingFirstStage(nn.Module):
    """taming's VQModel without Lightning: the same submodule names, so the same state-dict keys."""

    def __init__(self, ref, c: dict) -> None:
        super().__init__()
        dd = {k: c[k] for k in ("ch", "ch_mult", "num_res_blocks", "attn_resolutions", "resolution", "in_channels",
                                "z_channels")}  # fmt: skip
        dd.update(out_ch=c["in_channels"], double_z=False, dropout=0.0)
        self.ddconfig = dd
        self.encoder, self.decoder = ref["model"].Encoder(**dd), ref["model"].Decoder(**dd)
        self.quantize = ref["quantize"].VectorQuantizer2(c["n_embed"], c["embed_dim"], beta=0.25)
        self.quant_conv = nn.Conv2d(c["z_channels"], c["embed_dim"], 1)
        self.post_quant_conv = nn.Conv2d(c["embed_dim"], c["z_channels"], 1)


def write_ckpt(path: Path, state: dict) -> None:
    torch.save({"state_dict": state, "epoch": 3, "global_step": 1234, "pytorch-lightning_version": "1.0.8",
                "callbacks": {"ModelCheckpoint": {"best_model_score": torch.tensor(0.5)}},
                "hyper_parameters": HyperParameters(lr=4.5e-6)}, path)  # fmt: skip


def convert(ckpt: Path, out: Path, extra: list[str]) -> str:
    cmd = [sys.executable, "-c", "from vqgan_negatives.cli_import import import_taming; import_taming()",
           str(ckpt), "-o", str(out), *extra]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"import-taming failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stderr.strip()


def maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


@torch.no_grad()
def compare_first_stage(ref_vq, disc_ref, ours, disc_ours, x: torch.Tensor) -> dict:
    h_ref = ref_vq.quant_conv(ref_vq.encoder(x))
    zq_ref, loss_ref, (_, _, idx_ref) = ref_vq.quantize(h_ref)
    rec_ref = ref_vq.decoder(ref_vq.post_quant_conv(zq_ref))
    h_ours = ours.quant_conv(ours.encoder(x))
    zq_ours, loss_ours, idx_ours = ours.quantizer(h_ours)
    rec_ours = ours.decode(zq_ours)
    out = {
        "encoder_output": maxdiff(h_ref, h_ours),
        "codes_differing": int((idx_ref.view(-1) != idx_ours.view(-1)).sum()),
        "codes": idx_ref.numel(),
        "distinct_codes": int(idx_ref.unique().numel()),
        "decoder_on_same_codes": maxdiff(rec_ref, ours.decode(zq_ref)),
        "reconstruction": maxdiff(rec_ref, rec_ours),
        "codebook_loss": abs(float(loss_ref) - float(loss_ours)),
    }
    if disc_ref is not None:
        out["discriminator_logits"] = maxdiff(disc_ref(x), disc_ours(x))
    return out


def run_config(ref, name: str, c: dict, work: Path, gen: torch.Generator) -> dict:
    torch.manual_seed(0)
    vq = TamingFirstStage(ref, c).eval()
    randomise(vq, gen)
    x = torch.rand(4, c["in_channels"], c["resolution"], c["resolution"], generator=gen) * 2 - 1
    with torch.no_grad():  # codebook = encoder outputs (+ noise): many distinct nearest codes
        z = vq.quant_conv(vq.encoder(x)).permute(0, 2, 3, 1).reshape(-1, c["embed_dim"])
        pick = torch.randint(0, len(z), (c["n_embed"],), generator=gen)
        vq.quantize.embedding.weight.copy_(z[pick] + 0.1 * z.std() * torch.randn(z[pick].shape, generator=gen))
    d = c["disc"]
    disc = ref["disc"].NLayerDiscriminator(input_nc=c["in_channels"], ndf=d["ndf"], n_layers=d["n_layers"]).eval()
    randomise(disc, gen)
    state = {**vq.state_dict(), **{f"loss.discriminator.{k}": v for k, v in disc.state_dict().items()}}
    ckpt = work / f"{name}_vq.ckpt"
    write_ckpt(ckpt, state)
    yaml = work / f"{name}_vq.yaml"
    params = {"embed_dim": c["embed_dim"], "n_embed": c["n_embed"], "ddconfig": vq.ddconfig,
              "lossconfig": {"target": "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator",
                             "params": {"disc_start": 1, "disc_in_channels": c["in_channels"],
                                        "disc_num_layers": d["n_layers"], "disc_ndf": d["ndf"]}}}  # fmt: skip
    yaml.write_text(json.dumps({"model": {"target": "taming.models.vqgan.VQModel", "params": params}}))  # JSON is YAML
    result: dict = {"config": {k: v for k, v in c.items()}}
    for mode, extra in (("with_config", ["--config", str(yaml)]), ("inferred", ["--resolution", str(c["resolution"])])):
        out = work / f"{name}_vq_{mode}"
        notes = convert(ckpt, out, extra)
        ours = load_vqgan(out)
        disc_ours = PatchDiscriminator.from_pretrained(out / "discriminator").eval()
        result[f"first_stage_{mode}"] = compare_first_stage(vq, disc, ours, disc_ours, x)
        result[f"notes_{mode}"] = notes.splitlines()

    # the prior: taming's minGPT over [conditioning codes | target codes], the first stage also as cond stage
    side = c["resolution"] // 2 ** (len(c["ch_mult"]) - 1)
    length = side * side
    gpt = ref["mingpt"].GPT(vocab_size=c["n_embed"], block_size=2 * length + GPT["extra_positions"],
                            n_layer=GPT["n_layer"], n_head=GPT["n_head"], n_embd=GPT["n_embd"]).eval()  # fmt: skip
    randomise(gpt, gen)
    fs = vq.state_dict()
    state = {**{f"transformer.{k}": v for k, v in gpt.state_dict().items()},
             **{f"first_stage_model.{k}": v for k, v in fs.items()},
             **{f"cond_stage_model.{k}": v for k, v in fs.items()}}  # fmt: skip
    ckpt = work / f"{name}_gpt.ckpt"
    write_ckpt(ckpt, state)
    yaml = work / f"{name}_gpt.yaml"
    tparams = {"vocab_size": c["n_embed"], "block_size": 2 * length + GPT["extra_positions"],
               **{k: GPT[k] for k in ("n_layer", "n_head", "n_embd")}}  # fmt: skip
    first_stage = {**params, "lossconfig": {"target": "taming.modules.losses.DummyLoss"}}
    net2net = {"transformer_config": {"target": "taming.modules.transformer.mingpt.GPT", "params": tparams},
               "first_stage_config": {"target": "taming.models.vqgan.VQModel", "params": first_stage},
               "cond_stage_config": "__is_first_stage__"}  # fmt: skip
    yaml.write_text(json.dumps({"model": {"target": "taming.models.cond_transformer.Net2NetTransformer",
                                          "params": net2net}}))  # fmt: skip
    cond = torch.randint(0, c["n_embed"], (4, length), generator=gen)
    target = torch.randint(0, c["n_embed"], (4, length), generator=gen)
    with torch.no_grad():
        ref_logits = gpt(torch.cat([cond, target], 1)[:, :-1])[0][:, length - 1 :]
        _, _, (_, _, ref_cond) = vq.quantize(vq.quant_conv(vq.encoder(x)))
    shapes_only = ["--resolution", str(c["resolution"]), "--n-head", str(GPT["n_head"])]
    for mode, extra in (("with_config", ["--config", str(yaml)]), ("inferred", shapes_only)):
        out = work / f"{name}_gpt_{mode}"
        notes = convert(ckpt, out, extra)
        pipe = load_pipeline(out)
        with torch.no_grad():
            logits = pipe.gpt(cond, target[:, :-1])
            _, _, our_cond = pipe.vq.encode(x)
        result[f"transformer_{mode}"] = {
            "logits": maxdiff(ref_logits, logits),
            "conditioning_codes_differing": int((ref_cond.view(-1) != our_cond.view(-1)).sum()),
        }
        result[f"transformer_notes_{mode}"] = notes.splitlines()
    return result


def worst(results: dict) -> float:
    keys = ("encoder_output", "decoder_on_same_codes", "reconstruction", "codebook_loss", "discriminator_logits",
            "logits")  # fmt: skip
    values = [v for r in results.values() for part in r.values() if isinstance(part, dict)
              for k, v in part.items() if k in keys]  # fmt: skip
    return max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, help="Root of a taming-transformers checkout.")
    parser.add_argument("--reference-commit", default=None, help="The checkout's commit, recorded in the JSON.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/taming_vs_reference.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ref = import_reference(Path(args.reference).resolve())
    gen = torch.Generator().manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        results = {name: run_config(ref, name, c, Path(tmp), gen) for name, c in CONFIGS.items()}
    report = {
        "benchmark": "taming_vs_reference",
        "reference": str(args.reference),
        "reference_commit": args.reference_commit,
        "command": "python benchmarks/taming_vs_reference.py --reference PATH",
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, CPU, float32",
        "tolerance": TOLERANCE,
        "max_abs_difference": worst(results),
        "codes_differing": sum(r[k]["codes_differing"] for r in results.values() for k in r
                               if k.startswith("first_stage_")),  # fmt: skip
        "passed": worst(results) <= TOLERANCE,
        "configs": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    if not report["passed"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
