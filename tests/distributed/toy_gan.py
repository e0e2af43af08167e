"""Run by tests/test_distributed.py under `accelerate launch` with 2 CPU processes.

Each rank trains the toy GAN of gencore.testing with ``output_dir=<base>/rank_<r>``, so that any file a non-main
rank writes would show up in its own folder. Then it writes <base>/result_<r>.json (the script's own file, not the
Trainer's): rank, world size, a SHA-256 of all its weights (EMA and optimizer state included), and the sample
indices it saw in the first epoch.
"""

import hashlib
import json
import os
import sys
from pathlib import Path

from gencore.testing import make_gan_trainer, trainer_tensors

base = Path(sys.argv[1])
# The launcher's RANK, read before any accelerate state exists:
# a bare PartialState() here would pin the world size to 1.
rank = int(os.environ.get("RANK", "0"))
trainer = make_gan_trainer(base / f"rank_{rank}", max_steps=8, cpu=True, checkpoint_every=4)
seen = [idx for batch in trainer.sampler for idx in batch]
result = trainer.fit()
digest = hashlib.sha256()
for key, value in sorted(trainer_tensors(trainer).items()):
    digest.update(key.encode())
    digest.update(value.contiguous().numpy().tobytes())
(base / f"result_{rank}.json").write_text(
    json.dumps(
        {
            "rank": trainer.accelerator.process_index,
            "world": trainer.accelerator.num_processes,
            "sha": digest.hexdigest(),
            "seen": seen,
            "step": result.step,
        }
    )
)
