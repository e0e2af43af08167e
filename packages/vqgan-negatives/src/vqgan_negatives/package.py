"""vqgan-negatives in the package registry (entry point ``gencore.packages``): its two training commands (the
VQGAN first stage and the transformer prior that trains on a finished first stage), their configs and presets, and
its fault-test job. Plain data: nothing heavy is imported here."""

from __future__ import annotations

from gencore.registry import FaultJob, PackageSpec, TrainCommand

_F = "runs/vqgan-negatives-full"  # the full demo's run directories

#: First stage: 32-px images, 8-channel networks, a few dozen rendered molecules.
TINY_VQ = (
    "data.num_images=40", "data.holdout_fraction=0.2", "data.render.size=32", "model.resolution=32", "model.ch=8",
    "model.ch_mult=[1, 2, 2]", "model.attn_resolutions=[8]", "model.z_channels=8",
    "model.quantizer.codebook_size=32", "model.quantizer.codebook_dim=4", "disc.ndf=8", "disc.n_layers=2",
    "eval.samples=8", "train.batch_size=8", "train.max_steps=4", "train.log_every=2", "train.checkpoint_every=2",
    "train.eval_every=0", "train.sample_every=0", "train.progress_bar=false", "train.report_to=none",
)  # fmt: skip

#: Transformer prior: one layer of two heads, 32 wide, on the same few dozen images.
TINY_GPT = (
    "data.num_images=40", "data.holdout_fraction=0.2", "data.render.size=32", "gpt.n_layer=1", "gpt.n_head=2",
    "gpt.n_embd=32", "top_k=8", "train.batch_size=8", "train.max_steps=4", "train.log_every=2",
    "train.checkpoint_every=2", "train.eval_every=0", "train.sample_every=0", "train.progress_bar=false",
    "train.report_to=none",
)  # fmt: skip

SPEC = PackageSpec(
    name="vqgan-negatives",
    import_name="vqgan_negatives",
    cli="vqgan_negatives.cli:main",
    train_commands=(
        TrainCommand("train-vqgan", config="vqgan_negatives.config:VQGANConfig", module="vqgan_negatives.train",
                     presets={"tiny": TINY_VQ, "bench": ("data.num_images=800", "loss.disc_start=0")}),
        TrainCommand("train-transformer", config="vqgan_negatives.config:TransformerRunConfig",
                     module="vqgan_negatives.train_transformer",
                     presets={"tiny": TINY_GPT, "bench": ("data.num_images=800",)}, unit="token sequences",
                     label="vqgan-negatives-prior", trains_on=("train-vqgan", "--vqgan")),
    ),  # fmt: skip
    fault_job=FaultJob("train-vqgan", steps=5),
    # about 3 minutes: the pipeline at a small size (a first stage 8 channels wide without the perceptual term, 250
    # updates on 600 molecules; a 2-layer prior, 200 updates), then 32 hard negatives. The classifier study is
    # left to the full demo: at this size, without a second generator to test on, it shows nothing
    demo=(
        ("train-vqgan", "--output-dir", "runs/vqgan-negatives-demo/vqgan", "--max-steps", "250", "--resume", "auto",
         "--set", "data.num_images=600", "--set", "model.ch=8", "--set", "loss.perceptual=none", "--disc-start",
         "150", "--sample-every", "250", "--eval-every", "250", "--checkpoint-every", "250"),
        ("train-transformer", "--vqgan", "runs/vqgan-negatives-demo/vqgan", "--max-steps", "200", "--output-dir",
         "runs/vqgan-negatives-demo/transformer", "--resume", "auto", "--num-images", "600", "--batch-size", "16",
         "--set", "gpt.n_layer=2", "--set", "gpt.n_embd=64", "--sample-every", "200", "--eval-every", "200",
         "--checkpoint-every", "200"),
        ("make-negatives", "runs/vqgan-negatives-demo/transformer", "-n", "32", "-o",
         "runs/vqgan-negatives-demo/synthetic_dataset", "--overwrite"),
    ),
    demo_outputs=("runs/vqgan-negatives-demo/vqgan/samples", "runs/vqgan-negatives-demo/transformer/samples",
                  "runs/vqgan-negatives-demo/synthetic_dataset"),
    # README "Results": first the other generator of the study's last column (400 first-stage and 300 prior
    # updates on 800 molecules), then the README's commands (3,000 updates, 40 min; 1,002 prior updates, 19 min;
    # 400 negatives, 3.4 min; three seeds of the study, 3.5 min each; the validation experiment)
    demo_full=(
        ("train-vqgan", "--output-dir", f"{_F}/other/vqgan", "--max-steps", "400", "--resume", "auto", "--set",
         "data.num_images=800", "--disc-start", "250"),
        ("train-transformer", "--vqgan", f"{_F}/other/vqgan", "--max-steps", "300", "--output-dir",
         f"{_F}/other/transformer", "--resume", "auto", "--num-images", "800"),
        ("train-vqgan", "--output-dir", f"{_F}/vqgan", "--resume", "auto"),
        ("train-transformer", "--vqgan", f"{_F}/vqgan", "--output-dir", f"{_F}/transformer", "--max-steps", "1002",
         "--resume", "auto"),
        ("make-negatives", f"{_F}/transformer", "-n", "400", "-o", f"{_F}/synthetic_dataset", "--overwrite"),
        ("classifier-study", "--negatives", f"{_F}/synthetic_dataset", "--heldout-model", f"{_F}/other/transformer",
         "--seeds", "0,1,2", "-o", f"{_F}/study"),
        ("experiment", "--model", f"{_F}/transformer", "--model", f"{_F}/transformer/checkpoints/step_000500",
         "--model", f"{_F}/other/transformer", "-n", "32", "-o", f"{_F}/validation"),
    ),
    demo_full_outputs=(f"{_F}/synthetic_dataset", f"{_F}/study/study.json", f"{_F}/validation"),
    demo_full_minutes=95,
    loader="vqgan_negatives.pipeline:NegativesPipeline.from_pretrained",
)
