"""dcgan-tutorial in the package registry (entry point ``gencore.packages``): its training command, config and
presets, and its fault-test job. Plain data: nothing heavy is imported here."""

from __future__ import annotations

from gencore.registry import FaultJob, PackageSpec, TrainCommand

#: 16-px images, narrow networks, a few hundred crops (the tests, fault jobs and ``gpu_check.py --tiny``).
TINY = (
    "model.image_size=16", "model.ngf=8", "model.ndf=8", "model.nz=16", "data.num_images=96",
    "eval.samples=64", "eval.feature_steps=20", "train.batch_size=16", "train.max_steps=4", "train.log_every=2",
    "train.checkpoint_every=2", "train.eval_every=0", "train.sample_every=0", "train.progress_bar=false",
    "train.report_to=none",
)  # fmt: skip

SPEC = PackageSpec(
    name="dcgan-tutorial",
    import_name="dcgan_tutorial",
    cli="dcgan_tutorial.cli:main",
    train_commands=(
        TrainCommand("train", config="dcgan_tutorial.config:GANConfig", module="dcgan_tutorial.train",
                     presets={"tiny": TINY}),
    ),  # fmt: skip
    fault_job=FaultJob("train", steps=6),
    # about 2 minutes: 1,200 updates, where the brick walls and pebbles of the default textures first show (at 600
    # the samples were still grey noise); from 1,000 updates on, the run evaluates itself (fd, coverage ...)
    demo=(
        ("train", "--output-dir", "runs/dcgan-tutorial-demo", "--max-steps", "1200", "--resume", "auto",
         "--sample-every", "400", "--eval-every", "400", "--checkpoint-every", "400"),
        ("collapse-demo", "--output-dir", "runs/dcgan-collapse-demo", "--steps", "1000"),
    ),
    demo_outputs=("runs/dcgan-tutorial-demo/samples", "runs/dcgan-collapse-demo/collapse.png"),
    # README "Evaluation" table (default 3,000 updates ≈ 2.5 min; 10,000 with EMA ≈ 20 min) and the collapse demo
    demo_full=(
        ("train", "--output-dir", "runs/dcgan-tutorial-full/default", "--resume", "auto",
         "--set", "eval.feature_steps=300"),
        ("evaluate", "runs/dcgan-tutorial-full/default", "-n", "1000"),
        ("train", "--output-dir", "runs/dcgan-tutorial-full/ema", "--max-steps", "10000", "--ema", "0.999",
         "--resume", "auto", "--set", "eval.feature_steps=300"),
        ("evaluate", "runs/dcgan-tutorial-full/ema", "-n", "1000"),
        ("collapse-demo", "--output-dir", "runs/dcgan-tutorial-full/collapse", "--steps", "2000"),
    ),
    demo_full_outputs=("runs/dcgan-tutorial-full/default/samples", "runs/dcgan-tutorial-full/ema/samples",
                       "runs/dcgan-tutorial-full/collapse/collapse.png"),
    demo_full_minutes=25,
    loader="dcgan_tutorial.pipeline:DCGANPipeline.from_pretrained",
)
