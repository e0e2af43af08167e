"""hvae-captcha in the package registry (entry point ``gencore.packages``): its training command, config and
presets, and its fault-test job. Plain data: nothing heavy is imported here."""

from __future__ import annotations

from gencore.registry import FaultJob, PackageSpec, Ref, TrainCommand

#: 16x32 images, 8-channel blocks, a few dozen rendered CAPTCHAs (the tests, fault jobs and ``gpu_check.py --tiny``).
TINY = (
    "model.height=16", "model.width=32", 'model.outer_config=[["conv", 8], ["pool", 2], ["conv", 8]]',
    'model.inner_config=[[["pool", 2], ["conv", 8]]]', "model.latent_dim=2", "data.num_images=48",
    "data.holdout_fraction=0.25", "eval.samples=8", "eval.iw_samples=2", "train.batch_size=8",
    "train.max_steps=4", "train.log_every=2", "train.checkpoint_every=2", "train.eval_every=0",
    "train.sample_every=0", "train.progress_bar=false", "train.tensorboard=false", "optim.lr_warmup_steps=2",
    "loss.kl_warmup_steps=3",
)  # fmt: skip

SPEC = PackageSpec(
    name="hvae-captcha",
    import_name="hvae_captcha",
    cli="hvae_captcha.cli:main",
    train_commands=(
        TrainCommand(
            "train", config="hvae_captcha.config:HVAEConfig", module="hvae_captcha.train",
            presets={
                "tiny": TINY,
                "bench": ("data.num_images=2048",),
                # the CLI's --preset table (the CLI adds the text-aware settings to "compact" unless told not to)
                "compact": Ref("hvae_captcha.config:PRESETS", "compact"),
                "original": Ref("hvae_captcha.config:PRESETS", "original"),
            },
        ),
    ),  # fmt: skip
    fault_job=FaultJob("train", steps=6),
    demo=(
        ("train", "--output-dir", "runs/hvae-captcha-demo", "--max-steps", "400", "--resume", "auto",
         "--set", "data.num_images=2048", "--sample-every", "200", "--eval-every", "400"),
        ("sample", "runs/hvae-captcha-demo", "-n", "16", "-o", "runs/hvae-captcha-demo/samples.png"),
    ),
    demo_outputs=("runs/hvae-captcha-demo/samples.png",),
    loader="hvae_captcha.pipeline:HVAEPipeline.from_pretrained",
)
