"""Perlin conditioning images: gencore.noise against the noise library's pnoise2 called per pixel.

Both make the same grid with the same parameters in the same run; the script reports the speed of each, the
ratio and the largest absolute difference. The reference loop is what the original notebooks did (one
``noise.pnoise2`` call per pixel into a NumPy array). The two are timed in alternation, round by round (one
reference image, then the whole batch of each backend), so that a busy shared machine slows both alike; the
ratio reported is the median of the per-round ratios.

    python benchmarks/perlin.py                       # 64 images of 256x256, 4 octaves
    python benchmarks/perlin.py --size 512 --images 16 --octaves 6 --scale 100
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import noise
import numpy as np

from gencore.noise import HAVE_NUMBA, perlin_grid, seed_offset


def numba_threads() -> int | None:
    """Threads the numba kernel runs on (None without numba)."""
    if not HAVE_NUMBA:
        return None
    import numba

    return int(numba.get_num_threads())


def reference(size: int, scale: float, octaves: int, persistence: float, lacunarity: float, seed: int) -> np.ndarray:
    """One image, one pnoise2 call per pixel (at the same offset that perlin_grid derives from the seed)."""
    ox, oy = seed_offset(seed)
    out = np.empty((size, size), np.float32)
    for r in range(size):
        y = r / scale + oy
        for c in range(size):
            out[r, c] = noise.pnoise2(c / scale + ox, y, octaves=octaves, persistence=persistence,
                                      lacunarity=lacunarity)  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--images", type=int, default=64, help="Images made by the vectorised generator.")
    parser.add_argument("--rounds", type=int, default=8, help="Rounds of one per-pixel reference image + the batch.")
    parser.add_argument("--scale", type=float, default=16.0)
    parser.add_argument("--octaves", type=int, default=4)
    parser.add_argument("--persistence", type=float, default=0.5)
    parser.add_argument("--lacunarity", type=float, default=2.0)
    parser.add_argument("--out", default="benchmarks/results/perlin.json")
    args = parser.parse_args()
    kw = dict(scale=args.scale, octaves=args.octaves, persistence=args.persistence, lacunarity=args.lacunarity)
    seeds = list(range(args.images))
    px = args.size * args.size

    backends = ["numba", "numpy"] if HAVE_NUMBA else ["numpy"]
    for backend in backends:
        perlin_grid((args.size, args.size), seed=seeds[:2], backend=backend, **kw)  # compile / warm up
    ref_times, times, refs, batches = [], {b: [] for b in backends}, [], {}
    for r in range(args.rounds):
        t0 = time.perf_counter()
        refs.append(reference(args.size, seed=seeds[r % len(seeds)], **kw))
        ref_times.append(time.perf_counter() - t0)
        for backend in backends:
            t0 = time.perf_counter()
            batches[backend] = perlin_grid((args.size, args.size), seed=seeds, backend=backend, **kw)
            times[backend].append((time.perf_counter() - t0) / len(seeds))
    ref_s = float(np.median(ref_times))
    results = {}
    for backend in backends:
        ratios = [ref / ours for ref, ours in zip(ref_times, times[backend])]
        per_image = float(np.median(times[backend]))
        diff = max(float(np.abs(batches[backend][r % len(seeds)] - refs[r]).max()) for r in range(len(refs)))
        results[backend] = {
            "s_per_image": per_image,
            "mpx_per_s": px / per_image / 1e6,
            "speedup_vs_pnoise2": float(np.median(ratios)),
            "speedup_range": [float(min(ratios)), float(max(ratios))],
            "max_abs_diff": diff,
        }
    report = {
        "grid": f"{args.images} images of {args.size}x{args.size}",
        "params": kw,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "pnoise2_per_pixel": {"s_per_image": ref_s, "mpx_per_s": px / ref_s / 1e6, "images": len(refs)},
        "threads": numba_threads(),
        **results,
        "goal": "speedup >= 100, max_abs_diff <= 1e-5",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
