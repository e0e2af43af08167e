"""Sampling speed of vqgan-negatives' conditional prior: the key/value-cached sampler against recomputing the
whole prefix at every step (the sampler before the cache), measured in the same run on the same model.

    python benchmarks/prior_sampling.py [--batch 64] [--repeats 3] [--out benchmarks/results/prior_sampling.json]

The default GPTConfig (4 layers, 128 wide, 64 conditioning + 64 target codes). Writes the figures to JSON and
prints them; both samplers' logits agree (tests/test_transformer.py), so only time is compared.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from vqgan_negatives.config import GPTConfig
from vqgan_negatives.transformer import CondGPT, top_k_filter


@torch.no_grad()
def sample_without_cache(gpt: CondGPT, cond: torch.Tensor, length: int, top_k: int, gen: torch.Generator) -> None:
    """The reference: every step runs the model over the whole sequence so far."""
    target = cond.new_zeros((len(cond), 0))
    for _ in range(length):
        probs = F.softmax(top_k_filter(gpt(cond, target)[:, -1], top_k), dim=-1)
        target = torch.cat([target, torch.multinomial(probs, 1, generator=gen)], dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/prior_sampling.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    config = GPTConfig()
    gpt = CondGPT(config).eval()
    length = config.block_size // 2
    cond = torch.randint(0, gpt.codebook_size, (args.batch, length))
    times: dict[str, list[float]] = {"cached": [], "full_prefix": []}
    for _ in range(args.repeats):
        start = time.perf_counter()
        gpt.sample(cond, length, top_k=100, generator=torch.Generator().manual_seed(0))
        times["cached"].append(time.perf_counter() - start)
        start = time.perf_counter()
        sample_without_cache(gpt, cond, length, 100, torch.Generator().manual_seed(0))
        times["full_prefix"].append(time.perf_counter() - start)
    median = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "what": f"{args.batch} images x {length} codes, default GPTConfig, CPU, median of {args.repeats}",
        "seconds": median, "images_per_s": {k: args.batch / v for k, v in median.items()},
        "speedup_cached_over_full_prefix": median["full_prefix"] / median["cached"],
        "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
    }  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
