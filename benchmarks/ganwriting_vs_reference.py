"""Training iterations/s of ganwriting-music against the original CVC_OMR-GAN networks, same batch and image size.

The reference is not part of this repository: pass the ``GANWriting`` folder of a local checkout of
GerardAsbert/CVC_OMR-GAN (``--reference``). Its ``ConTranModel`` (VGG19-BN style encoder + AdaIN-free decoder,
ResBlock discriminator, CNN recognizer) is imported from there and driven exactly as its ``main_run.py`` drives it
per batch: recognizer update, discriminator update (BCE + gradient penalty), generator update, each with
``backward(retain_graph=True)`` and Adam (lr 1e-5 / 1e-4 / 1e-5). ``wandb``, ``cv2`` and ``Levenshtein`` are only
imported by the reference's modules, never called on this path (augmentation is off in the reference, logging and
CER happen elsewhere), so empty stand-ins are registered when they are not installed. The original networks are
built for 128×128 images, so the comparison runs at 128×128 (grey), with ours at its default ("original")
configuration, training through gencore's Trainer (its figure includes everything the Trainer does per step).

Both train on the same random images; repeats alternate A/B; the figure is 1 / median step time.

    .venv/bin/python benchmarks/ganwriting_vs_reference.py --reference /path/to/CVC_OMR-GAN/GANWriting --batch 8
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import torch

from ganwriting_music.config import GanwritingConfig
from ganwriting_music.model import count_parameters
from ganwriting_music.train import build_trainer
from gencore.config import build_config


def load_reference(folder: Path):  # noqa: ANN201 - a class from the reference
    """Import the reference's ConTranModel from its GANWriting folder (its prints are silenced)."""
    if not (folder / "network_tro.py").is_file():
        raise SystemExit(f"{folder} has no network_tro.py: pass the GANWriting folder of CVC_OMR-GAN")
    for name in ("wandb", "cv2", "Levenshtein"):
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)  # imported at module level, unused on the timed path
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.path.insert(0, str(folder))
    with contextlib.redirect_stdout(io.StringIO()):
        import network_tro  # noqa: PLC0415 - imported from the path given on the command line
    return network_tro


def reference_times(ref, steps: int, batch: int, size: int, warmup: int) -> tuple[list[float], dict]:  # noqa: ANN001
    """Per-iteration seconds of the reference's rec/dis/gen updates."""
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        model = ref.ConTranModel(show_iter_num=1, oov=True, pretrained_rec=False)
    model.train()
    opts = {
        "rec": torch.optim.Adam(model.rec.parameters(), lr=1e-5),
        "dis": torch.optim.Adam(model.dis.parameters(), lr=1e-5),
        "gen": torch.optim.Adam(model.gen.parameters(), lr=1e-4),
    }
    images = torch.rand(batch, 1, size, size)
    labels = torch.randint(0, 20, (batch,))
    times = []
    with contextlib.redirect_stdout(io.StringIO()):  # the reference prints similarity figures every 10 iterations
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            for mode, opt in (("rec_update", opts["rec"]), ("dis_update", opts["dis"]), ("gen_update", opts["gen"])):
                opt.zero_grad()
                out = model((images, labels), 0, mode)
                loss = out[0] if isinstance(out, tuple) else out
                loss.backward(retain_graph=True)
                opt.step()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    params = {k: count_parameters(getattr(model, k)) for k in ("gen", "dis", "rec")}
    return times, params


def ours_times(steps: int, batch: int, size: int, warmup: int) -> tuple[list[float], dict]:
    """Per-iteration seconds of ganwriting-music's D/R/G updates through gencore's Trainer."""
    with tempfile.TemporaryDirectory() as tmp:
        per_class = max(2, -(-batch * (warmup + steps + 1) // 80))  # enough images for the steps, 20 classes × 4
        config = build_config(GanwritingConfig, overrides=[
            f"data.image_size={size}", f"data.samples_per_class={per_class}", f"train.batch_size={batch}",
            f"train.output_dir={tmp!r}", f"train.max_steps={warmup + steps + 1}", "train.progress_bar=false",
            "train.report_to=none", "train.log_every=1000000", "eval_every_epochs=0", "data.test_fraction=0",
            "train.max_epochs=1000",
        ])  # fmt: skip
        trainer = build_trainer(config)
        step = trainer.step_fn
        stamps: list[float] = []

        def timed(ctx, batch_):  # noqa: ANN001, ANN202
            stamps.append(time.perf_counter())
            return step(ctx, batch_)

        trainer.step_fn = timed
        trainer.sample_fn = trainer.eval_fn = None  # nothing after the timed loop but the final checkpoint
        trainer.fit()
        stamps.append(time.perf_counter())
        params = {k: count_parameters(trainer.unwrap(k)) for k in ("G", "D", "R")}
    diffs = [b - a for a, b in zip(stamps, stamps[1:])]
    return diffs[warmup : warmup + steps], params  # one extra step: the last interval also holds the final save


def main() -> None:
    """Run both side by side and write benchmarks/results/ganwriting_vs_reference.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="GANWriting folder of CVC_OMR-GAN")
    parser.add_argument("--batch", type=int, default=8, help="batch size for both (the original: 92)")
    parser.add_argument("--size", type=int, default=128, help="image side; the reference networks need 128")
    parser.add_argument("--steps", type=int, default=5, help="timed iterations per repeat")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    default_out = Path(__file__).parent / "results" / "ganwriting_vs_reference.json"
    parser.add_argument("--output", type=Path, default=default_out)
    args = parser.parse_args()
    if args.size != 128:
        raise SystemExit("the reference networks are hard-wired to 128×128 images (DisModel, RecModel_CNN)")
    torch.set_num_threads(args.threads)
    ref = load_reference(args.reference.resolve())
    ours_all, ref_all = [], []
    for _ in range(args.repeats):
        t, ours_params = ours_times(args.steps, args.batch, args.size, args.warmup)
        ours_all += t
        t, ref_params = reference_times(ref, args.steps, args.batch, args.size, args.warmup)
        ref_all += t
    ours_its, ref_its = 1 / statistics.median(ours_all), 1 / statistics.median(ref_all)
    result = {
        "benchmark": "training iterations/s (one D, one R and one G update per batch)",
        "batch": args.batch, "image_size": args.size, "threads": args.threads, "device": "cpu",
        "steps_timed": len(ours_all), "ours_it_per_s": round(ours_its, 4), "reference_it_per_s": round(ref_its, 4),
        "speedup": round(ours_its / ref_its, 3), "ours_parameters": ours_params, "reference_parameters": ref_params,
        "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
    }  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
