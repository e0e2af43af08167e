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
    "train.sample_every=0", "train.progress_bar=false", "train.report_to=none", "optim.lr_warmup_steps=2",
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
    # about 2 minutes: the default text-aware model, 300 updates on 1,024 CAPTCHAs; samples with their texts, and
    # reconstructions of held-out CAPTCHAs (the model's fit before its samples are sharp)
    demo=(
        ("train", "--output-dir", "runs/hvae-captcha-demo", "--max-steps", "300", "--resume", "auto",
         "--set", "data.num_images=1024", "--sample-every", "150", "--eval-every", "300"),
        ("sample", "runs/hvae-captcha-demo", "-n", "16", "--temperature", "0.7", "-o",
         "runs/hvae-captcha-demo/samples.png"),
        ("reconstruct", "runs/hvae-captcha-demo", "-n", "8", "-o", "runs/hvae-captcha-demo/reconstructions.png"),
    ),
    demo_outputs=("runs/hvae-captcha-demo/samples.png", "runs/hvae-captcha-demo/reconstructions.png"),
    # README "Default model on the default data": 9,000 updates text-aware (4,820 s) and without the text
    # (2,744 s), each evaluated (the text-aware one with a 3,000-update reader) and sampled; on the one-stream
    # images those figures were measured on (data.render_format 1)
    demo_full=(
        ("train", "--output-dir", "runs/hvae-captcha-full/default", "--max-steps", "9000", "--resume", "auto",
         "--set", "data.render_format=1"),
        ("evaluate", "runs/hvae-captcha-full/default", "-k", "64", "-n", "256", "--text-accuracy", "--reader-steps",
         "3000", "--temperature", "0.7"),
        ("sample", "runs/hvae-captcha-full/default", "-n", "32", "--temperature", "0.7", "-o",
         "runs/hvae-captcha-full/default/samples.png"),
        ("reconstruct", "runs/hvae-captcha-full/default", "-n", "16", "-o",
         "runs/hvae-captcha-full/default/reconstructions.png"),
        ("train", "--unconditioned", "--output-dir", "runs/hvae-captcha-full/plain", "--max-steps", "9000",
         "--resume", "auto", "--set", "data.render_format=1"),
        ("evaluate", "runs/hvae-captcha-full/plain", "-k", "64", "-n", "256"),
        ("sample", "runs/hvae-captcha-full/plain", "-n", "32", "--temperature", "0.7", "-o",
         "runs/hvae-captcha-full/plain/samples.png"),
    ),
    demo_full_outputs=("runs/hvae-captcha-full/default/samples.png",
                       "runs/hvae-captcha-full/default/reconstructions.png",
                       "runs/hvae-captcha-full/plain/samples.png"),
    demo_full_minutes=140,
    loader="hvae_captcha.pipeline:HVAEPipeline.from_pretrained",
)
