"""ganwriting-music in the package registry (entry point ``gencore.packages``): its training command, config and
presets, and its fault-test job. Plain data: nothing heavy is imported here."""

from __future__ import annotations

from gencore.registry import FaultJob, PackageSpec, Ref, TrainCommand

#: 16x16 images, four classes, two fonts, networks a few channels wide (the tests, fault jobs, ``gpu_check --tiny``).
#: The recognizer reads them at full size: pooled to 8x8, its last stride-2 convolution would see a 1x1 map, and
#: PyTorch's CPU bf16 convolution (2.14.1) then returns NaN weight gradients now and then (a 3x3, stride-2,
#: padding-1 Conv2d on a (8, 16, 1, 1) input under bf16 autocast: NaN in 1 of a few hundred backward passes), which
#: made the bf16 variant of ``gpu_check --tiny`` fail about one run in three.
#: It sets every key that a preset of ``--preset`` sets (the last line: the original's values of the keys only the
#: cpu preset sets), so the CLI's ``--preset auto`` makes the same tiny run on a CPU and on a GPU.
TINY = (
    "data.image_size=16", "data.samples_per_class=4", 'data.classes=["accidentalSharp", "gClef", "noteheadBlack", '
    '"stem"]', 'data.fonts=["Bravura", "Leipzig"]', 'data.holdout_writers=["Petaluma"]', "data.test_fraction=0.25",
    "model.k_refs=2", "model.gen_channels=4", "model.dis_channels=4", "model.rec_channels=4", "model.rec_downsample=1",
    "model.style_dim=8",
    "model.class_dim=4", "model.noise_dim=4", "train.batch_size=8", "train.log_every=1", "train.progress_bar=false",
    "train.report_to=none", "train.max_epochs=2", "train.checkpoint_every_epochs=1", "train.eval_every_epochs=1",
    "train.sample_every_epochs=1", "eval.samples=8", "loss.w_l1=1.0", "optim.lr_d=1e-3", "optim.lr_g=1e-3",
    "optim.lr_r=1e-3",
    "model.style_channels=0", "data.writer_pen=0.0", "model.style_writer_head=false", "loss.w_ms=0.0",
    "loss.ms_pool=1", "optim.ema_decay=0.0",
)  # fmt: skip

SPEC = PackageSpec(
    name="ganwriting-music",
    import_name="ganwriting_music",
    cli="ganwriting_music.cli:main",
    train_commands=(
        TrainCommand(
            # `train START_EPOCH`, as in the original code: `auto` continues from the newest checkpoint
            "train", config="ganwriting_music.config:GanwritingConfig", module="ganwriting_music.train",
            resume="start-epoch", cpu_preset="cpu",  # --preset auto: the original's size needs a GPU
            presets={
                "tiny": TINY,
                "original": Ref("ganwriting_music.config:PRESETS", "original"),  # the CLI's --preset table
                "cpu": Ref("ganwriting_music.config:PRESETS", "cpu"),
            },
        ),
    ),  # fmt: skip
    # it counts epochs: 24 training images, batch 8 -> 3 updates an epoch, saved every epoch; it keeps every
    # epoch's state by default (start epochs), two in the fault job so that pruning is exercised too
    fault_job=FaultJob("train", steps=9, epochs=3),
    # about 3 minutes: --preset cpu at 32x32 for 5 epochs (360 updates); the Petaluma grid (a font the GAN never
    # saw) and the evaluation. The classifier study is left to the full demo (25-30 min a seed)
    demo=(
        ("train", "auto", "--preset", "cpu", "--size", "32", "--epochs", "5", "--eval-every", "5", "--save-every",
         "5", "--output-dir", "runs/ganwriting-music-demo"),
        ("generate", "runs/ganwriting-music-demo", "--class", "all", "--style-from", "font:Petaluma", "-n", "40",
         "-o", "runs/ganwriting-music-demo/petaluma.png"),
        ("evaluate", "runs/ganwriting-music-demo", "--classifier-steps", "200"),
    ),
    demo_outputs=("runs/ganwriting-music-demo/samples", "runs/ganwriting-music-demo/petaluma.png",
                  "runs/ganwriting-music-demo/eval/evaluation.json"),
    # README "Headline": --preset cpu, 30 epochs (2,374 s), its evaluation, the Petaluma grid and the classifier
    # study's three seeds (25-30 min each)
    demo_full=(
        ("train", "auto", "--preset", "cpu", "--output-dir", "runs/ganwriting-music-full", "--set",
         "train.log_every=36"),
        ("evaluate", "runs/ganwriting-music-full", "--classifier-steps", "400"),
        ("generate", "runs/ganwriting-music-full", "--class", "all", "--style-from", "font:Petaluma", "-n", "40",
         "-o", "runs/ganwriting-music-full/petaluma.png"),
        ("classifier-study", "runs/ganwriting-music-full", "--steps", "400", "--seed", "0"),
        ("classifier-study", "runs/ganwriting-music-full", "--steps", "400", "--seed", "1"),
        ("classifier-study", "runs/ganwriting-music-full", "--steps", "400", "--seed", "2"),
    ),
    demo_full_outputs=("runs/ganwriting-music-full/samples", "runs/ganwriting-music-full/petaluma.png"),
    demo_full_minutes=130,
    loader="ganwriting_music.pipeline:GanwritingPipeline.from_pretrained",
)
