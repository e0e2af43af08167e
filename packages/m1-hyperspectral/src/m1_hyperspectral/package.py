"""m1-hyperspectral in the package registry (entry point ``gencore.packages``): its training command, config and
presets, and its fault-test job. Plain data: nothing heavy is imported here."""

from __future__ import annotations

from gencore.registry import FaultJob, PackageSpec, Ref, TrainCommand

#: A 16x16 synthetic scene of 12 bands, a narrow M1 (the tests, fault jobs and ``gpu_check.py --tiny``).
TINY = (
    "data.synth.height=16", "data.synth.width=16", "data.synth.bands=12", "data.synth.scale=6",
    "model.hidden=[32, 32]", "model.latent=4", "train.batch_size=64", "train.max_steps=20",
    "train.log_every=5", "train.eval_every=5", "train.checkpoint_every=10", "train.sample_every=0",
    "train.progress_bar=false", "train.report_to=none", "optim.lr=0.003",
)  # fmt: skip

SPEC = PackageSpec(
    name="m1-hyperspectral",
    import_name="m1_hyperspectral",
    cli="m1_hyperspectral.cli:main",
    train_commands=(
        TrainCommand("train", config="m1_hyperspectral.config:M1RunConfig", module="m1_hyperspectral.train",
                     presets={"tiny": TINY, "original": Ref("m1_hyperspectral.config:PRESETS", "original")},
                     unit="spectra"),
    ),  # fmt: skip
    fault_job=FaultJob("train", steps=12),
    # under a minute: a 32x32 scene (820 training pixels) and a 200-200-10 network without the weight prior; measured
    # alone, the run ended by its patience (10 evaluations without a better validation log-likelihood) at step
    # 1,050 of 3,000 (README "Results"); then the classification table
    demo=(
        ("train", "--output-dir", "runs/m1-hyperspectral-demo", "--max-steps", "3000", "--patience", "10",
         "--resume", "auto", "--set", "data.synth.height=32", "--set", "data.synth.width=32", "--set",
         "model.hidden=[200, 200]", "--set", "model.latent=10", "--set", "optim.lr=0.001", "--set",
         "optim.weight_prior_sd=0"),
        ("classify", "runs/m1-hyperspectral-demo", "--labels-per-class", "5,10,50", "--repeats", "3"),
    ),
    demo_outputs=("runs/m1-hyperspectral-demo/samples", "runs/m1-hyperspectral-demo/classify.json"),
    # README "Results": the default run to step 19,600 (39 min; it had not stopped by patience there), its test
    # log-likelihood (K = 100) and both classification tables
    demo_full=(
        ("train", "--output-dir", "runs/m1-hyperspectral-full", "--max-steps", "19600", "--resume", "auto"),
        ("evaluate", "runs/m1-hyperspectral-full", "-k", "100"),
        ("classify", "runs/m1-hyperspectral-full", "--labels-per-class", "5,10,50", "--repeats", "5"),
        ("classify", "runs/m1-hyperspectral-full", "--labels-per-class", "5,10,50", "--repeats", "5",
         "--classifier", "svm"),
    ),
    demo_full_outputs=("runs/m1-hyperspectral-full/samples", "runs/m1-hyperspectral-full/classify.json"),
    demo_full_minutes=45,
    loader="m1_hyperspectral.pipeline:M1Pipeline.from_pretrained",
)
