"""Paper check of M1 (Kingma et al. 2014, Table 1 setting) on real data a package ships: scikit-learn's digits.

    python benchmarks/m1_digits.py [--repeats 10] [--out benchmarks/results]

The 1,797 handwritten digits (8x8 pixels, values 0-16) are written as a one-column "cube" (1797 x 1 x 64 with
a ground truth of digit + 1, so that no image is background 0) and go through the package's own commands:
`m1-hyperspectral train digits.npy --likelihood bernoulli` (the paper's network: 2 x 500 softplus units,
50 latent units; batch 100 because the set is small) and then the same protocol as `classify`: 100 labels
(10 per class, class-balanced, seeded), a linear classifier on the posterior means against one on the raw
pixels, every other image as test set, repeated over seeds. Differences from the paper: 8x8 digits instead of
28x28 MNIST, 1.8k instead of 50k images, a linear SVM / logistic regression instead of a transductive SVM.
The paper's MNIST figure for M1+TSVM at 100 labels is 11.82% test error.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--patience", type=int, default=100)
    parser.add_argument("--max-steps", type=int, default=5000, help="cap (the ELBO creeps up for a long time)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()

    from sklearn.datasets import load_digits

    from gencore.config import build_config
    from m1_hyperspectral.classify import compare
    from m1_hyperspectral.config import M1RunConfig
    from m1_hyperspectral.data import load_scene, pixels_from_scenes
    from m1_hyperspectral.features import extract_features
    from m1_hyperspectral.model import M1
    from m1_hyperspectral.train import run_training

    digits = load_digits()
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "digits.npy", digits.data.reshape(-1, 1, 64).astype(np.float32))
        np.save(Path(tmp) / "digits_gt.npy", (digits.target + 1).reshape(-1, 1))
        run = Path(tmp) / "run"
        config = build_config(M1RunConfig, overrides=[
            f"data.paths=[{str(Path(tmp) / 'digits.npy')!r}]", "model.likelihood='bernoulli'",
            "train.batch_size=100", f"train.patience={args.patience}", f"train.max_steps={args.max_steps}",
            f"train.seed={args.seed}",
            f"train.output_dir={str(run)!r}", "train.progress_bar=false", "train.sample_every=0",
            "train.checkpoint_every=0", "train.report_to=none",
        ])  # fmt: skip
        t0 = time.perf_counter()
        result = run_training(config)
        train_s = time.perf_counter() - t0
        model = M1.from_pretrained(run / "model")
        pixels = pixels_from_scenes([load_scene(Path(tmp) / "digits.npy")])
        feats = extract_features(model, pixels, seed=args.seed)["mean"]
        raw = model.normalize(torch.from_numpy(pixels.spectra)).numpy()
        out: dict = {"images": len(pixels), "train_steps": result.step, "stopped_by": result.reason,
                     "train_seconds": round(train_s, 1), "best_valid_ll": result.metrics.get("valid_ll"),
                     "paper_m1_tsvm_error_100_labels": 0.1182, "rows": {}}  # fmt: skip
        for clf in ("svm", "logreg"):
            rows = compare({"M1 features": feats, "raw pixels": raw}, pixels.labels, [10], args.repeats, clf, args.seed)
            for row in rows:
                out["rows"][f"{row['features']} + {clf}"] = {
                    "test_error": round(1 - row["oa"], 4),
                    "error_std": round(row["oa_std"], 4),
                }
    path = Path(args.out)
    path.mkdir(parents=True, exist_ok=True)
    (path / "m1_digits.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    print(f"wrote {path / 'm1_digits.json'}")


if __name__ == "__main__":
    main()
