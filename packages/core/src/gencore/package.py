"""gencore's self-demo in the package registry (entry point ``gencore.packages``): ``gencore demo`` trains like a
package does, so the registry-driven tests, fault jobs and benchmarks run it beside the packages."""

from __future__ import annotations

from gencore.registry import FaultJob, PackageSpec, TrainCommand

#: A few hundred shapes, batch 16, a 2-sample evaluation bound every 4 updates.
TINY = (
    "num_images=128", "train.batch_size=16", "train.eval_every=4", "iw_samples=2", "train.progress_bar=false",
    "train.report_to=none",
)  # fmt: skip

SPEC = PackageSpec(
    name="gencore",
    import_name="gencore",
    cli="gencore.cli:main",
    train_commands=(
        TrainCommand("demo", config="gencore.demo:DemoConfig", module="gencore.demo",
                     presets={"tiny": TINY, "bench": ("num_images=4096",)}),
    ),  # fmt: skip
    fault_job=FaultJob("demo", steps=8),
    demo=(("demo", "--output-dir", "runs/gencore-demo", "--resume", "auto"),),
    demo_outputs=("runs/gencore-demo/samples", "runs/gencore-demo/losses.png"),
    # the README's figures are of the short demo itself (1,500 updates, 22 s)
    demo_full=(("demo", "--output-dir", "runs/gencore-full", "--resume", "auto"),),
    demo_full_outputs=("runs/gencore-full/samples", "runs/gencore-full/losses.png"),
    demo_full_minutes=1,
    loader="gencore.checkpoint:load_model",
)
