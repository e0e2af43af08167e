"""vqgan-negatives in the package registry (entry point ``gencore.packages``): its two training commands (the
VQGAN first stage and the transformer prior that trains on a finished first stage), their configs and presets, and
its fault-test job. Plain data: nothing heavy is imported here."""

from __future__ import annotations

from gencore.registry import FaultJob, PackageSpec, TrainCommand

#: First stage: 32-px images, 8-channel networks, a few dozen rendered molecules.
TINY_VQ = (
    "data.num_images=40", "data.holdout_fraction=0.2", "data.render.size=32", "model.resolution=32", "model.ch=8",
    "model.ch_mult=[1, 2, 2]", "model.attn_resolutions=[8]", "model.z_channels=8",
    "model.quantizer.codebook_size=32", "model.quantizer.codebook_dim=4", "disc.ndf=8", "disc.n_layers=2",
    "eval.samples=8", "train.batch_size=8", "train.max_steps=4", "train.log_every=2", "train.checkpoint_every=2",
    "train.eval_every=0", "train.sample_every=0", "train.progress_bar=false", "train.tensorboard=false",
)  # fmt: skip

#: Transformer prior: one layer of two heads, 32 wide, on the same few dozen images.
TINY_GPT = (
    "data.num_images=40", "data.holdout_fraction=0.2", "data.render.size=32", "gpt.n_layer=1", "gpt.n_head=2",
    "gpt.n_embd=32", "top_k=8", "train.batch_size=8", "train.max_steps=4", "train.log_every=2",
    "train.checkpoint_every=2", "train.eval_every=0", "train.sample_every=0", "train.progress_bar=false",
    "train.tensorboard=false",
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
    demo=(
        ("train-vqgan", "--output-dir", "runs/vqgan-negatives-demo/vqgan", "--max-steps", "400", "--resume", "auto",
         "--set", "data.num_images=800", "--disc-start", "250", "--sample-every", "200", "--eval-every", "200",
         "--checkpoint-every", "200"),
        ("train-transformer", "--vqgan", "runs/vqgan-negatives-demo/vqgan", "--max-steps", "300", "--output-dir",
         "runs/vqgan-negatives-demo/transformer", "--resume", "auto", "--num-images", "800", "--sample-every",
         "300", "--eval-every", "300", "--checkpoint-every", "300"),
        ("make-negatives", "runs/vqgan-negatives-demo/transformer", "-n", "64", "-o",
         "runs/vqgan-negatives-demo/synthetic_dataset", "--overwrite"),
        ("classifier-study", "--negatives", "runs/vqgan-negatives-demo/synthetic_dataset", "--seeds", "0",
         "--n-train", "400", "--n-test", "200", "--steps", "150", "-o", "runs/vqgan-negatives-demo/study"),
    ),
    demo_outputs=("runs/vqgan-negatives-demo/synthetic_dataset", "runs/vqgan-negatives-demo/study/study.json"),
    loader="vqgan_negatives.pipeline:NegativesPipeline.from_pretrained",
)
