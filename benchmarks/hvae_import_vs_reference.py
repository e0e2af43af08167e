"""hvae-captcha import-original against the original project's own code (Anzarts/ProyectoMSD7203).

Builds the original HVAE (its defaults: RGB 50×250, latent 512, one inner block) from a local checkout with random
weights (batch-norm statistics randomised too), saves its state_dict as the original does (HVAE.save), converts it
with ``hvae-captcha import-original`` and compares, in eval mode, float32, on the same images and the same noise:

* q(z1|x): mean and log-variance (the original's encode, level 1, vs this package's bottom-up pass);
* q(z2|z1) for the same z1 sample (the original feeds its sample on; this package's bottom-up pass feeds the mean,
  so the sample is passed through its modules directly), and the bottom-up q(z2|x) (the original with z1 = mean);
* the decoder: the original's ``generate(z2)`` vs ``HVAE.top_down`` from the prior, both with the same z2 and the
  same draw for z1 (``noise``), compared as images in [0, 1] (the original's sigmoid output).

    python benchmarks/hvae_import_vs_reference.py --reference /tmp/orig-hvae

Writes benchmarks/results/hvae_import_vs_reference.json and prints it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

TARGET = 1e-5


def load_reference(path: Path):  # noqa: ANN201 - the original's module
    spec = importlib.util.spec_from_file_location("proyecto_msd7203_model", path / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Weights as after some training, not as built: batch-norm scales and shifts drawn at random, batch-norm
    statistics measured on random inputs (so activations stay of order one, as in a trained model) and the
    spectral-norm vectors moved on by power iterations (train-mode passes)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=g) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=g) * 0.1)
                module.reset_running_stats()
                module.momentum = None  # cumulative averages over the calibration batches
        model.train()
        for _ in range(4):
            model.encode(torch.rand(8, model.input_channels, *model.input_size, generator=g))
            model.generate(torch.randn(8, model.lattent_dim, generator=g))
    model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="local checkout of Anzarts/ProyectoMSD7203")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    default_output = Path(__file__).parent / "results" / "hvae_import_vs_reference.json"
    parser.add_argument("--output", type=Path, default=default_output)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    reference = load_reference(args.reference)
    original = reference.HVAE()
    randomise(original, args.seed + 1)
    from hvae_captcha.runs import load_model

    result: dict[str, object] = {"reference": str(args.reference), "torch": torch.__version__, "dtype": "float32"}
    with tempfile.TemporaryDirectory() as tmp:
        pt = Path(tmp) / "HVAE.pt"
        torch.save(original.state_dict(), pt)  # as HVAE.save does
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "hvae_captcha", "import-original", str(pt), "-o", str(Path(tmp) / "model")]
        subprocess.run(cmd, check=True)
        result["convert_seconds"] = round(time.perf_counter() - start, 2)
        model = load_model(Path(tmp) / "model")

    g = torch.Generator().manual_seed(args.seed + 2)
    b, k = args.batch, original.lattent_dim
    x01 = torch.rand(b, 3, 50, 250, generator=g)  # the original's inputs: ToTensor, [0, 1]
    eps1, eps2, eps3 = (torch.randn(b, k, generator=g) for _ in range(3))
    diffs: dict[str, float] = {}

    def diff(name: str, a: torch.Tensor, c: torch.Tensor) -> None:
        diffs[name] = float((a - c).abs().max())

    with torch.no_grad():
        # the original, piece by piece with the given noise (its sample_lattent draws fresh noise)
        h1 = original.encoder[0](x01)
        mu1, lv1 = original.mu_layers[0](h1), original.lv_layers[0](h1)
        z1 = mu1 + torch.exp(0.5 * lv1) * eps1
        h2 = original.encoder[1](z1)
        mu2, lv2 = original.mu_layers[1](h2), original.lv_layers[1](h2)
        h2m = original.encoder[1](mu1)
        mu2m, lv2m = original.mu_layers[1](h2m), original.lv_layers[1](h2m)
        g1 = original.decoder[0](eps2)  # generate(z2 = eps2)
        mup, lvp = original.mu_layers[2](g1), original.lv_layers[2](g1)
        image_original = original.decoder[-1](mup + torch.exp(0.5 * lvp) * eps3)

        bu = model.bottom_up(x01 * 2 - 1)  # this package's images are in [-1, 1]
        diff("q_z1_mu", bu[0][0], mu1)
        diff("q_z1_logvar", bu[0][1], lv1)
        diff("q_z2_mu_given_mean_z1", bu[1][0], mu2m)
        diff("q_z2_logvar_given_mean_z1", bu[1][1], lv2m)
        h = model.enc_fc[1](model.enc_inner[0](model.enc_in[0](z1)))
        mu2_here, lv2_here = model.q_heads[1](h)
        diff("q_z2_mu_given_sample_z1", mu2_here, mu2)
        diff("q_z2_logvar_given_sample_z1", lv2_here, lv2)
        params, levels = model.top_down(b, None, noise=[eps2, eps3])
        diff("p_z1_mu", levels[1].mu_p, mup)
        diff("p_z1_logvar", levels[1].logvar_p, lvp)
        diff("decoder_image", model.mean_image(params), image_original)
    result["max_abs_diff"] = diffs
    result["max_abs_diff_all"] = max(diffs.values())
    result["largest_abs_value"] = {"q_z1_mu": float(mu1.abs().max()), "p_z1_mu": float(mup.abs().max())}
    result["target"] = TARGET
    result["passed"] = result["max_abs_diff_all"] <= TARGET
    result["parameters"] = sum(p.numel() for p in model.parameters())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
