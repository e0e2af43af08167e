"""The bad-input table: one row per (package command, broken input) with the substring the error must contain.

Paths are written with three tokens replaced at run time: ``$IN`` (the damaged input files), ``$RUNS`` (tiny
trained runs and damaged copies of them, ``$RUNS/bad/...``) and ``$OUT`` (the case's own output directory, also
its working directory). Training commands get the package's tiny configuration, so a case that got past
validation would still fail or finish within seconds instead of hanging the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from bad_inputs import as_sets, tiny


@dataclass(frozen=True)
class Case:
    """``package`` command line ``args`` must fail cleanly with an error containing ``expect``."""

    package: str
    name: str
    args: tuple[str, ...]
    expect: str

    @property
    def id(self) -> str:
        return f"{self.package}-{self.name}"


def _cases(package: str, rows: list[tuple[str, str, list[str]]]) -> list[Case]:
    return [Case(package, name, tuple(args), expect) for name, expect, args in rows]


def _config_rows(cmd: list[str]) -> list[tuple[str, str, list[str]]]:
    """Config-file and --set mistakes, the same for every training command (the parser is shared)."""
    c = "$IN/cfg"
    return [
        ("config-unknown-key-toml", "unknown config key train.bogus_option", [*cmd, "--config", f"{c}/unknown.toml"]),
        ("config-typo-toml", "did you mean train.max_steps", [*cmd, "--config", f"{c}/typo.toml"]),
        ("config-wrong-type-toml", "train.seed: expected an integer", [*cmd, "--config", f"{c}/wrongtype.toml"]),
        ("config-unknown-key-json", "unknown config key trian", [*cmd, "--config", f"{c}/unknown.json"]),
        ("config-syntax-json", "is not valid JSON", [*cmd, "--config", f"{c}/syntax.json"]),
        ("set-no-equals", "--set expects key=value", [*cmd, "--set", "train.max_steps"]),
        # non-finite, out-of-range and hostile values: one line each, never a traceback or a poisoned run
        ("set-grad-clip-nan", "train.grad_clip: expected a finite number", [*cmd, "--set", "train.grad_clip=nan"]),
        ("set-grad-clip-inf", "train.grad_clip: expected a finite number", [*cmd, "--set", "train.grad_clip=inf"]),
        ("set-float-overflow", "is too large for a number",
         [*cmd, "--set", f"train.grad_clip={10**400}"]),
        ("seed-negative", "-1 is not in the range", [*cmd, "--seed", "-1"]),
        ("seed-2-pow-64", "is not in the range", [*cmd, "--seed", str(2**64)]),
        ("set-seed-negative", "a seed must lie in", [*cmd, "--set", "train.seed=-1"]),
        ("config-nested-1000-json", "nested", [*cmd, "--config", "$IN/cfg/deep.json"]),
        ("config-nested-1000-toml", "nested", [*cmd, "--config", "$IN/cfg/deep.toml"]),
        ("set-nested-1000", "nested more than", [*cmd, "--set", "train.seed=" + "[" * 1000 + "]" * 1000]),
        ("set-wrong-type", "train.max_steps: expected an integer, got 'abc'", [*cmd, "--set", "train.max_steps=abc"]),
    ]


def gencore_cases() -> list[Case]:
    c = "$IN/cfg"
    # small enough that a case which got past validation would finish in a second instead of minutes
    fast = ["demo", *as_sets(["num_images=64", "train.batch_size=8", "train.max_steps=2", "train.eval_every=0"])]
    rows = [
        *_config_rows(fast),
        ("config-table-as-value", "train: expected a table", ["demo", "--config", f"{c}/table_as_value.toml"]),
        ("config-syntax-toml", "is not valid TOML", [*fast, "--config", f"{c}/syntax.toml"]),
        ("config-not-utf8", "nonutf8.toml", [*fast, "--config", f"{c}/nonutf8.toml"]),
        ("config-wrong-type-json", "train.log_every: expected an integer", [*fast, "--config", f"{c}/wrongtype.json"]),
        ("config-list-json", "must hold a table/object", [*fast, "--config", f"{c}/list.json"]),
        ("config-bool-for-int", "expected an integer, got True", [*fast, "--config", f"{c}/bool_for_int.json"]),
        ("config-ini", "must end in .toml, .json, .yaml or .yml", [*fast, "--config", f"{c}/config.ini"]),
        ("config-syntax-yaml", "is not valid YAML", [*fast, "--config", f"{c}/syntax.yaml"]),
        ("config-list-yaml", "must hold a table/object", [*fast, "--config", f"{c}/list.yaml"]),
        ("config-nested-1000-yaml", "nested", [*fast, "--config", f"{c}/deep.yaml"]),
        ("config-alias-bomb-yaml", "more than 100,000 values", [*fast, "--config", f"{c}/aliases.yaml"]),
        ("config-wrong-type-yaml", "train.log_every: expected an integer", [*fast, "--config", f"{c}/wrongtype.yaml"]),
        ("config-missing", "config file not found", [*fast, "--config", f"{c}/missing.toml"]),
        ("config-is-directory", "is a directory", [*fast, "--config", f"{c}/a_directory.toml"]),
        ("set-empty-key", "--set expects key=value", [*fast, "--set", "=5"]),
        ("set-empty-part", "--set expects key=value", [*fast, "--set", "train..seed=1"]),
        ("set-into-scalar", "train.max_steps: expected an integer", [*fast, "--set", "train.max_steps.x=1"]),
        ("set-unknown-section", "unknown config key bogus", [*fast, "--set", "bogus.key=1"]),
        ("set-bad-literal", "expected one of", [*fast, "--set", "train.precision=fp8"]),
        ("set-zero-batch", "batch_size must be at least 1", [*fast, "--set", "train.batch_size=0"]),
        ("set-patience-no-metric", "patience needs early_stop_metric", [*fast, *as_sets(["train.patience=3",
                                                                                         "train.early_stop_metric=''"])]),
        ("set-nan-float", "expected a number", [*fast, "--set", "optim.lr=nan-ish"]),
        ("max-steps-zero", "0 is not in the range", [*fast, "--max-steps", "0"]),
        ("precision-choice", "'fp8' is not one of", [*fast, "--precision", "fp8"]),
        ("seed-not-int", "'abc' is not a valid integer", [*fast, "--seed", "abc"]),
        ("resume-missing", "checkpoint not found", [*fast, "--resume", "$IN/no_such_checkpoint"]),
        ("resume-truncated-checkpoint", "truncated or altered", [*fast, "--resume", "$RUNS/bad/hvae_ckpt_trunc/step"]),
        ("verify-missing", "checkpoint directory not found", ["verify", "$IN/no_such_dir"]),
        ("verify-truncated", "truncated or altered", ["verify", "$RUNS/bad/hvae_model_trunc"]),
        ("verify-no-manifest", "no manifest.json", ["verify", "$RUNS/bad/hvae_no_manifest"]),
        ("verify-garbage-manifest", "manifest.json is corrupt", ["verify", "$RUNS/bad/hvae_bad_manifest"]),
    ]  # fmt: skip
    return _cases("gencore", rows)


def dcgan_cases() -> list[Case]:
    t = ["train", *as_sets(tiny("dcgan"))]
    bad = "$RUNS/bad"
    rows = [
        *_config_rows(t),
        ("data-missing-folder", "is neither a folder nor one of", [*t, "--data", "$IN/no_such_folder"]),
        ("data-unknown-builtin-class", "'texturez' is neither a folder", [*t, "--data", "texturez"]),
        ("set-adam-beta1-one", "optim.beta1 must be in [0, 1)", [*t, "--set", "optim.beta1=1"]),
        ("sample-empty-output", "an output path is empty", ["sample", "$RUNS/dcgan", "-o", ""]),
        ("sample-empty-save-dir", "--save-dir is empty", ["sample", "$RUNS/dcgan", "--save-dir", ""]),
        ("sample-onto-model-weights", "not an image file name", ["sample", "$RUNS/dcgan", "-o",
                                                                 "$RUNS/dcgan/model/generator/model.safetensors"]),
        ("data-empty-folder", "no images in", [*t, "--data", "$IN/empty"]),
        ("data-zero-byte-image", "flat_zero/b.png: empty file", [*t, "--data", "$IN/flat_zero"]),
        ("data-truncated-image", "flat_trunc/b.png", [*t, "--data", "$IN/flat_trunc"]),
        ("data-text-as-png", "flat_text/b.png", [*t, "--data", "$IN/flat_text"]),
        ("data-class-folder-zero-byte", "classes_zero/one/b.png", [*t, "--data", "$IN/classes_zero"]),
        ("data-image-file-not-folder", "good.png", [*t, "--data", "$IN/img/good.png"]),
        ("data-torchvision-missing", "MNIST files not found", [*t, "--data", "mnist:$IN/empty"]),
        ("image-size-not-power-of-two", "image_size must be a power of two", [*t, "--image-size", "20"]),
        ("channels-choice", "'2' is not one of", [*t, "--channels", "2"]),
        ("loss-choice", "'bogus' is not one of", [*t, "--loss", "bogus"]),
        ("set-model-kind", "model.kind: expected one of", [*t, "--set", "model.kind=gan"]),
        ("set-holdout-fraction", "holdout_fraction must be between 0 and 1", [*t, "--set",
                                                                               "data.holdout_fraction=1.5"]),
        ("set-lr-string", "optim.lr_g: expected a number", [*t, "--set", "optim.lr_g=fast"]),
        ("resume-truncated-checkpoint", "truncated or altered", [*t, "--resume", f"{bad}/dcgan_ckpt_trunc/step"]),
        ("resume-foreign-checkpoint", "does not fit this run", [*t, "--resume", f"{bad}/hvae_ckpt_ok/step"]),
        ("sample-missing-run", "no generator in", ["sample", "$IN/no_such_run"]),
        ("sample-empty-dir", "no generator in", ["sample", "$IN/empty"]),
        ("sample-truncated-model", "truncated or altered", ["sample", f"{bad}/dcgan_model_trunc"]),
        ("sample-truncated-safetensors", "model.safetensors", ["sample", f"{bad}/dcgan_model_trunc_m"]),
        ("sample-garbage-config", "not JSON", ["sample", f"{bad}/dcgan_model_garbage"]),
        ("sample-config-wrong-type", "nz: expected an integer", ["sample", f"{bad}/dcgan_model_wrongtype"]),
        ("sample-num-zero", "0 is not in the range", ["sample", "$RUNS/dcgan", "-n", "0"]),
        ("evaluate-not-a-run", "is not a run directory", ["evaluate", "$IN/empty"]),
        ("evaluate-garbage-run-config", "not JSON", ["evaluate", f"{bad}/dcgan_run_garbage", "-n", "16"]),
        ("stylize-missing-content", "no_such.png", ["stylize", "$IN/no_such.png", "$IN/img/good.png", "--steps", "1"]),
        ("stylize-zero-byte-content", "zero.png: empty file", ["stylize", "$IN/img/zero.png", "$IN/img/good.png"]),
        ("stylize-text-style", "text.png", ["stylize", "$IN/img/good.png", "$IN/img/text.png"]),
        ("stylize-truncated-jpeg", "truncated.jpg", ["stylize", "$IN/img/truncated.jpg", "$IN/img/good.png"]),
        ("stylize-zero-byte-vgg", "zero.png", ["stylize", "$IN/img/good.png", "$IN/img/good.png", "--size", "32",
                                                "--steps", "1", "--vgg-weights", "$IN/img/zero.png"]),
        ("sample-discriminator-dir", "discriminator", ["sample", "$RUNS/dcgan/model/discriminator"]),
        ("sample-foreign-model", "HVAE, not dcgan-tutorial's DCGANGenerator", ["sample", "$RUNS/hvae/model"]),
        ("evaluate-foreign-run", "unknown config key", ["evaluate", "$RUNS/m1", "-n", "16"]),
        ("collapse-steps-range", "5 is not in the range", ["collapse-demo", "--steps", "5"]),
    ]  # fmt: skip
    return _cases("dcgan", rows)


def hvae_cases() -> list[Case]:
    t = ["train", *as_sets(tiny("hvae"))]
    bad = "$RUNS/bad"
    rows = [
        *_config_rows(t),
        ("data-empty-folder", "no images in", [*t, "--data", "$IN/empty"]),
        ("data-missing-folder", "data folder not found", [*t, "--data", "$IN/no_such_folder"]),
        ("data-missing-emoji-folder", "data folder not found: $IN/no_such_😀", [*t, "--data", "$IN/no_such_😀"]),
        ("data-zero-byte-image", "2b827.png: empty file", [*t, "--data", "$IN/captcha_zero"]),
        ("data-non-image-file", "README.txt is not an image", [*t, "--data", "$IN/captcha_notimage"]),
        ("data-truncated-image", "ab12c.png", [*t, "--data", "$IN/captcha_trunc"]),
        # an explicit vocabulary (without one, it is inferred from the file names)
        ("data-unknown-characters", "not in model.vocabulary", [*t, "--conditioned", "--data", "$IN/captcha_badchar",
                                                                "--set", "model.vocabulary='abcde9'"]),
        ("size-not-hxw", "--size expects HxW", [*t, "--size", "32by128"]),
        ("size-too-small", "at least 4×4", [*t, "--size", "0x0"]),
        ("outer-odd-tokens", "cannot read layers", [*t, "--outer", "conv"]),
        ("inner-non-integer", "cannot read layers", [*t, "--inner", "pool 2, conv x"]),
        ("set-unknown-layer-kind", "unknown layer kind 'bogus'", [*t, "--set", 'model.outer_config=[["bogus", 3]]']),
        ("set-layers-wrong-type", "model.outer_config", [*t, "--set", "model.outer_config=5"]),
        ("likelihood-choice", "'poisson' is not one of", [*t, "--likelihood", "poisson"]),
        ("preset-choice", "'huge' is not one of", [*t, "--preset", "huge"]),
        ("set-render-format", "data.render_format must be one of 1, 2, got 3", [*t, "--set", "data.render_format=3"]),
        ("set-noise-dots-negative", "data.noise_dots must be between 0 and 10000", [*t, "--set", "data.noise_dots=-1"]),
        ("set-font-size-zero", "data.font_sizes must be positive integers", [*t, "--set", "data.font_sizes=[0]"]),
        ("set-eval-iw-samples-zero", "eval.iw_samples must be at least 1", [*t, "--set", "eval.iw_samples=0"]),
        ("set-adam-beta2-negative", "optim.beta2 must be in [0, 1)", [*t, "--set", "optim.beta2=-0.5"]),
        ("sample-onto-text-file", "not an image file name", ["sample", "$RUNS/hvae", "-o",
                                                             "$IN/captcha_notimage/README.txt"]),
        ("resume-truncated-safetensors", "state.safetensors", [*t, "--resume", f"{bad}/hvae_ckpt_trunc_m/step"]),
        ("sample-missing-run", "no model in", ["sample", "$IN/no_such_run"]),
        ("sample-foreign-model", "M1, not hvae-captcha's HVAE", ["sample", "$RUNS/m1/model"]),
        ("sample-truncated-model", "truncated or altered", ["sample", f"{bad}/hvae_model_trunc"]),
        ("sample-truncated-safetensors", "model.safetensors", ["sample", f"{bad}/hvae_model_trunc_m"]),
        ("sample-garbage-config", "not JSON", ["sample", f"{bad}/hvae_model_garbage"]),
        ("sample-no-manifest", "no manifest.json", ["sample", f"{bad}/hvae_no_manifest"]),
        ("sample-text-unconditioned", "--text needs a model trained with --conditioned",
         ["sample", "$RUNS/hvae", "--text", "abc"]),
        ("sample-temperature-range", "-1.0 is not in the range", ["sample", "$RUNS/hvae", "--temperature", "-1"]),
        ("reconstruct-zero-byte-image", "2b827.png: empty file", ["reconstruct", "$RUNS/hvae", "--data",
                                                                   "$IN/captcha_zero"]),
        ("reconstruct-empty-dir", "no model in", ["reconstruct", "$IN/empty"]),
        ("evaluate-non-image-file", "README.txt is not an image", ["evaluate", "$RUNS/hvae", "--data",
                                                                     "$IN/captcha_notimage", "-k", "1"]),
        ("evaluate-no-model", "no model in", ["evaluate", "$IN/captcha_badchar", "-k", "1"]),
        ("inspect-config-wrong-type", "model.height: expected an integer", ["inspect-config", "--set",
                                                                             "model.height=abc"]),
        ("inspect-config-syntax", "is not valid TOML", ["inspect-config", "--config", "$IN/cfg/syntax.toml"]),
        ("data-make-text-length", "0 is not in the range", ["data", "make", "-o", "$OUT/c", "--text-length", "0"]),
    ]  # fmt: skip
    return _cases("hvae", rows)


def m1_cases() -> list[Case]:
    t = ["train", *as_sets(tiny("m1"))]
    h = "$IN/hsi"
    bad = "$RUNS/bad"
    rows = [
        *_config_rows(t),
        ("auto-name-comment-escapes", "log.comment becomes part of a folder name", [
            *t, "--auto-name", "--set", 'log.comment="/../../escaped"']),
        ("set-hidden-zero-width", "model.hidden must be a non-empty list", [*t, "--set", "model.hidden=[0]"]),
        ("set-synth-one-band", "data.synth.bands must be at least 2", [*t, "--set", "data.synth.bands=1"]),
        ("set-synth-endmembers-huge", "data.synth.endmembers must be 1 to 6", [*t, "--set",
                                                                               "data.synth.endmembers=99"]),
        ("nan-cube-npy", "holds 1 NaN/inf values", [*t, f"{h}/nan_cube.npy"]),
        ("inf-cube-mat", "holds 1 NaN/inf values", [*t, f"{h}/inf_cube.mat"]),
        ("two-d-array", "no H×W×B cube found", [*t, f"{h}/flat_2d.npy"]),
        ("four-d-array", "no H×W×B cube found", [*t, f"{h}/four_d.npy"]),
        ("one-band", "expected at least 2 bands", [*t, f"{h}/one_band.npy"]),
        ("no-pixels", "expected at least 2 bands and 1 pixel", [*t, f"{h}/no_pixels.npy"]),
        ("string-dtype", "strings.npy", [*t, f"{h}/strings.npy"]),
        ("complex-dtype", "complex.npy", [*t, f"{h}/complex.npy"]),
        ("object-dtype-pickle", "allow_pickle", [*t, f"{h}/object.npy"]),
        ("truncated-npy", "truncated.npy: cannot read it as npy", [*t, f"{h}/truncated.npy"]),
        ("zero-byte-npy", "zero.npy: not a .mat, .h5 or .npy file", [*t, f"{h}/zero.npy"]),
        ("text-as-npy", "text.npy: not a .mat, .h5 or .npy file", [*t, f"{h}/text.npy"]),
        ("text-as-mat", "text.mat: cannot read it as mat5", [*t, f"{h}/text.mat"]),
        ("text-as-h5", "text.h5: not a .mat, .h5 or .npy file", [*t, f"{h}/text.h5"]),
        ("truncated-mat", "truncated.mat: cannot read it", [*t, f"{h}/truncated.mat"]),
        ("truncated-h5", "truncated.h5: cannot read it as h5", [*t, f"{h}/truncated.h5"]),
        ("missing-file", "no_such.npy: no such file", [*t, f"{h}/no_such.npy"]),
        ("directory-as-file", "hsi", [*t, h]),
        ("negative-gt-sibling", "must hold non-negative integer class ids", [*t, f"{h}/gt_scene.npy"]),
        ("missing-cube-key-mat", "no H×W×B cube found", [*t, f"{h}/no_cube.mat"]),
        ("two-cubes-ambiguous", "2 candidate H×W×B cube found", [*t, f"{h}/two_cubes.mat"]),
        ("gt-not-integer", "must hold non-negative integer class ids", [*t, f"{h}/gt_fraction.mat", "--gt-key", "gt"]),
        ("cube-key-missing", "no variable 'nope'", [*t, f"{h}/scene.mat", "--cube-key", "nope"]),
        ("gt-key-missing", "no ground-truth variable 'nope'", [*t, f"{h}/scene.mat", "--gt-key", "nope"]),
        ("bands-disagree", "all files must have the same bands", [*t, f"{h}/good.npy", f"{h}/other_bands.mat"]),
        ("gt-file-wrong-shape", "no cube and no H×W ground truth", [*t, f"{h}/good.npy", f"{h}/gt_only.mat"]),
        ("h5-strings-only", "no H×W×B cube found", [*t, f"{h}/strings.h5"]),
        ("likelihood-choice", "'poisson' is not one of", [*t, "--likelihood", "poisson"]),
        ("set-valid-fraction", "valid_fraction must be in (0, 1)", [*t, "--set", "data.valid_fraction=0"]),
        ("set-hidden-not-list", "model.hidden: expected a list", [*t, "--set", "model.hidden=5"]),
        ("patience-zero", "0 is not in the range", [*t, "--patience", "0"]),
        ("resume-truncated-checkpoint", "truncated or altered", [*t, "--resume", f"{bad}/m1_ckpt_trunc/step"]),
        ("sample-missing-run", "no M1 model in", ["sample", "$IN/no_such_run"]),
        ("sample-foreign-model", "HVAE, not m1-hyperspectral's M1", ["sample", "$RUNS/hvae/model"]),
        ("sample-truncated-safetensors", "model.safetensors", ["sample", f"{bad}/m1_model_trunc_m"]),
        ("extract-nan-cube", "NaN/inf", ["extract", "$RUNS/m1", f"{h}/nan_cube.npy", "-o", "$OUT/f.h5"]),
        ("extract-wrong-bands", "bands", ["extract", "$RUNS/m1", f"{h}/good.npy", "-o", "$OUT/f.h5"]),
        ("extract-format-choice", "'csv' is not one of", ["extract", "$RUNS/m1", "--format", "csv"]),
        ("classify-labels-not-int", "--labels-per-class must be integers", ["classify", "$RUNS/m1",
                                                                              "--labels-per-class", "a,b"]),
        ("classify-labels-zero", "--labels-per-class needs positive integers", ["classify", "$RUNS/m1",
                                                                                  "--labels-per-class", "0"]),
        ("classify-no-ground-truth", "no labeled pixels", ["classify", "$RUNS/m1", f"{h}/good12.npy"]),
        ("evaluate-model-dir", "is not a run directory", ["evaluate", "$RUNS/m1/model"]),
        ("evaluate-truncated-model", "truncated or altered", ["evaluate", f"{bad}/m1_model_trunc"]),
        ("synth-endmembers-range", "9 is not in the range", ["data", "synth", "-o", "$OUT/s.h5", "--endmembers",
                                                              "9"]),
    ]  # fmt: skip
    return _cases("m1", rows)


def vqgan_cases() -> list[Case]:
    t = ["train-vqgan", *as_sets(tiny("vqgan", "TINY_VQ"))]
    g = ["train-transformer", *as_sets(tiny("vqgan", "TINY_GPT"))]
    bad = "$RUNS/bad"
    gpt = "$RUNS/gpt"
    rows = [
        *_config_rows(t),
        ("data-empty-folder", "holds no images", [*t, "--data", "$IN/empty"]),
        ("set-adam-beta1-one", "optim.beta1 must be in [0, 1)", [*t, "--set", "optim.beta1=1.5"]),
        ("data-missing-folder", "image folder not found", [*t, "--data", "$IN/no_such_folder"]),
        ("data-zero-byte-image", "flat_zero/b.png: empty file", [*t, "--data", "$IN/flat_zero"]),
        ("data-text-as-png", "flat_text/b.png", [*t, "--data", "$IN/flat_text"]),
        ("data-truncated-image", "flat_trunc/b.png", [*t, "--data", "$IN/flat_trunc"]),
        ("in-channels-mismatch", "model.in_channels (3) != data.channels", [*t, "--set", "model.in_channels=3"]),
        ("codebook-size-range", "1 is not in the range", [*t, "--codebook-size", "1"]),
        ("perceptual-choice", "'vgg' is not one of", [*t, "--perceptual", "vgg"]),
        ("transformer-missing-vqgan", "no_such_run", [*g, "--vqgan", "$IN/no_such_run"]),
        ("transformer-truncated-vqgan", "truncated or altered", [*g, "--vqgan", f"{bad}/vq_model_trunc"]),
        ("transformer-truncated-vqgan-safetensors", "model.safetensors", [*g, "--vqgan", f"{bad}/vq_model_trunc_m"]),
        ("transformer-resume-truncated", "state.safetensors", [*g, "--vqgan", "$RUNS/vqgan", "--resume",
                                                                f"{bad}/gpt_ckpt_trunc_m/step"]),
        ("sample-missing-run", "no trained transformer in", ["sample", "$IN/no_such_run"]),
        ("sample-vqgan-run-not-transformer", "no trained transformer in", ["sample", "$RUNS/vqgan"]),
        ("sample-condition-empty-path", "image", ["sample", gpt, "--condition", "image:"]),
        ("image-size-odd", "resolution", [*t, "--image-size", "30"]),
        ("sample-unknown-condition", "unknown condition 'bogus'", ["sample", gpt, "--condition", "bogus"]),
        ("sample-perlin-negative-scale", "need scale > 0", ["sample", gpt, "--condition", "perlin:scale=-1"]),
        ("sample-perlin-bad-value", "bad value for octaves", ["sample", gpt, "--condition", "perlin:octaves=x"]),
        ("sample-perlin-unknown-key", "bad Perlin option", ["sample", gpt, "--condition", "perlin:size=3"]),
        ("sample-condition-zero-byte", "zero.png: empty file", ["sample", gpt, "--condition",
                                                                 "image:$IN/img/zero.png"]),
        ("sample-condition-missing", "no_such.png", ["sample", gpt, "--condition", "image:$IN/no_such.png"]),
        ("sample-condition-empty-folder", "holds no images", ["sample", gpt, "--condition", "image:$IN/empty"]),
        ("sample-truncated-gpt", "truncated or altered", ["sample", f"{bad}/gpt_model_trunc"]),
        ("sample-truncated-checkpoint", "state.safetensors", ["sample", f"{bad}/gpt_ckpt_trunc_m/step"]),
        ("sample-temperature-zero", "0.0 is not in the range", ["sample", gpt, "--temperature", "0"]),
        ("experiment-unknown-condition", "unknown condition 'bogus'", ["experiment", "--model", gpt, "--condition",
                                                                        "bogus"]),
        ("experiment-missing-model", "no trained transformer in", ["experiment", "--model", "$IN/empty"]),
        ("experiment-real-zero-byte", "flat_zero/b.png: empty file", ["experiment", "--model", gpt, "--real",
                                                                       "$IN/flat_zero", "-n", "4"]),
        ("make-negatives-missing-run", "no trained transformer in", ["make-negatives", "$IN/no_such_run"]),
        ("make-negatives-missing-classifier", "no_such_classifier", ["make-negatives", gpt, "-n", "1",
                                                                      "--classifier", "$IN/no_such_classifier"]),
        ("classifier-study-empty", "holds no images", ["classifier-study", "--negatives", "$IN/empty"]),
        ("classifier-study-seeds", "--seeds expects comma-separated integers", ["classifier-study", "--seeds", "a,b"]),
        ("classifier-study-truncated-image", "flat_trunc/b.png", ["classifier-study", "--negatives", "$IN/flat_trunc"]),
        ("render-size-range", "8 is not in the range", ["data", "render", "-o", "$OUT/m", "--size", "8"]),
        ("noise-kind-choice", "'pink' is not one of", ["noise", "-o", "$OUT/n", "--kind", "pink"]),
    ]  # fmt: skip
    return _cases("vqgan", rows)


def ganwriting_cases() -> list[Case]:
    t = ["train", *as_sets(tiny("ganwriting"))]
    w = "$IN/gw"
    bad = "$RUNS/bad"
    run = "$RUNS/ganwriting"
    rows = [
        *_config_rows(t),
        ("index-one-field", "one_field.txt:1: expected 'PATH<TAB>CLASS", [*t, "--data", f"{w}/one_field.txt"]),
        ("index-four-fields", "four_fields.txt:1: expected", [*t, "--data", f"{w}/four_fields.txt"]),
        ("index-empty-field", "empty_field.txt:1: expected", [*t, "--data", f"{w}/empty_field.txt"]),
        ("index-spaces-not-tabs", "spaces_not_tabs.txt:1: expected", [*t, "--data", f"{w}/spaces_not_tabs.txt"]),
        ("index-unknown-class", "unknown_class.txt:1: unknown class 'gClefff'", [*t, "--data",
                                                                                 f"{w}/unknown_class.txt"]),
        ("index-missing-image", "missing.png", [*t, "--data", f"{w}/missing_image.txt"]),
        ("index-zero-byte-image", "zero.png: empty file", [*t, "--data", f"{w}/zero_image.txt"]),
        ("index-text-as-png", "text.png", [*t, "--data", f"{w}/text_image.txt"]),
        ("index-blank-image", "no ink", [*t, "--data", f"{w}/blank_image.txt"]),
        ("index-comments-only", "lists no images", [*t, "--data", f"{w}/comments_only.txt"]),
        ("index-not-utf8", "is not a UTF-8 text file", [*t, "--data", f"{w}/nonutf8.txt"]),
        ("folders-zero-byte-image", "gClef/a.png", [*t, "--data", f"{w}/folders/zero_image"]),
        ("folders-unknown-class", "unknown class 'notAClass'", [*t, "--data", f"{w}/folders/unknown_class"]),
        ("data-empty-folder", "is empty", [*t, "--data", "$IN/empty"]),
        ("data-missing", "data source not found", [*t, "--data", "$IN/no_such_source"]),
        ("data-missing-emoji", "data source not found: $IN/🎵/x", [*t, "--data", "$IN/🎵/x"]),
        ("homus-nan-point", "nan_point.txt:2", [*t, "--data", f"{w}/homus/nan_point"]),
        ("set-empty-classes", "data.classes must be a non-empty list", [*t, "--set", "data.classes=[]"]),
        ("set-unknown-font-class", "unknown class 'notAClass'", [*t, "--set", 'data.classes=["gClef", "notAClass"]']),
        ("set-unknown-font", "unknown font 'Comic'", [*t, "--set", 'data.fonts=["Bravura", "Comic"]']),
        ("start-epoch-not-int", "abc", [*t, "abc"]),
        ("size-not-multiple-of-16", "multiple of 16", [*t, "--size", "20"]),
        ("preset-choice", "'gpu' is not one of", [*t, "--preset", "gpu"]),
        ("resume-truncated-safetensors", "state.safetensors", [*t, "--resume", f"{bad}/gw_ckpt_trunc_m/step"]),
        ("read-classes-unknown-class", "unknown class 'notAClass'", ["read-classes", f"{w}/folders/unknown_class",
                                                                     "-o", "$OUT/i.txt"]),
        ("read-classes-empty-class", "is an empty class folder", ["read-classes", f"{w}/folders/empty_class", "-o",
                                                                   "$OUT/i.txt"]),
        ("read-classes-empty-root", "is empty", ["read-classes", "$IN/empty", "-o", "$OUT/i.txt"]),
        ("read-classes-missing", "folder not found", ["read-classes", "$IN/no_such_root", "-o", "$OUT/i.txt"]),
        ("read-classes-no-classes", "--classes expects", ["read-classes", f"{w}/folders/unknown_class", "-o",
                                                           "$OUT/i.txt", "--classes", ","]),
        ("homus-bad-point", "bad_point.txt:2: malformed stroke point '3'", ["render-homus", f"{w}/homus/bad_point",
                                                                             "-o", "$OUT/h"]),
        ("homus-letters", "malformed stroke point 'x,y'", ["render-homus", f"{w}/homus/letters", "-o", "$OUT/h"]),
        ("homus-three-coords", "malformed stroke point '1,2,3'", ["render-homus", f"{w}/homus/three_coords", "-o",
                                                                   "$OUT/h"]),
        ("homus-class-only", "no strokes after the class name", ["render-homus", f"{w}/homus/class_only", "-o",
                                                                  "$OUT/h"]),
        ("homus-empty-file", "expected the class name on the first line", ["render-homus", f"{w}/homus/empty_file",
                                                                            "-o", "$OUT/h"]),
        ("homus-unknown-class", "unknown class 'Treble-Clef-ish'", ["render-homus", f"{w}/homus/unknown_class", "-o",
                                                                     "$OUT/h"]),
        ("homus-nan-render", "nan_point.txt:2", ["render-homus", f"{w}/homus/nan_point", "-o", "$OUT/h"]),
        ("homus-inf-render", "inf_point.txt:2", ["render-homus", f"{w}/homus/inf_point", "-o", "$OUT/h"]),
        ("homus-not-utf8", "is not a UTF-8 text file", ["render-homus", f"{w}/homus/nonutf8", "-o", "$OUT/h"]),
        ("homus-empty-folder", "no HOMUS .txt files", ["render-homus", "$IN/empty", "-o", "$OUT/h"]),
        ("export-fonts-unknown-font", "unknown font(s) ['Comic']", ["export-fonts", "-o", "$OUT/f", "--fonts",
                                                                     "Comic"]),
        ("clean-unknown-class", "unknown class 'gClefff'", ["clean", f"{w}/unknown_class.txt", "-o", "$OUT/c"]),
        ("clean-empty-folder", "is empty", ["clean", "$IN/empty", "-o", "$OUT/c"]),
        ("generate-missing-run", "is not a ganwriting-music run", ["generate", "$IN/no_such_run"]),
        ("generate-foreign-model", "HVAE, not ganwriting-music's Networks", ["generate", "$RUNS/hvae"]),
        ("start-epoch-without-checkpoint", "5", [*t, "5"]),
        ("generate-unknown-class", "unknown class 'notAClass'", ["generate", run, "--class", "notAClass"]),
        ("generate-onto-model-weights", "not an image file name", ["generate", run, "-o",
                                                                   f"{run}/model/model.safetensors"]),
        ("set-adam-beta2-one", "optim.beta2 must be in [0, 1)", [*t, "--set", "optim.beta2=1"]),
        ("generate-unknown-font", "unknown font 'Comic'", ["generate", run, "--style-from", "font:Comic"]),
        ("generate-empty-style-folder", "is an empty style folder", ["generate", run, "--style-from", "$IN/empty"]),
        ("generate-zero-byte-style", "flat_zero/b.png: empty file", ["generate", run, "--style-from",
                                                                      "$IN/flat_zero"]),
        ("generate-truncated-model", "truncated or altered", ["generate", f"{bad}/gw_model_trunc"]),
        ("generate-truncated-safetensors", "model.safetensors", ["generate", f"{bad}/gw_model_trunc_m"]),
        ("export-mashcima-unknown-class", "unknown class 'bogus'", ["export-mashcima", run, "-o", "$OUT/m",
                                                                     "--class", "bogus"]),
        ("export-mashcima-threshold", "2.0 is not in the range", ["export-mashcima", run, "-o", "$OUT/m",
                                                                   "--threshold", "2"]),
        ("evaluate-missing-run", "no_such_run", ["evaluate", "$IN/no_such_run"]),
        ("classifier-study-unknown-writer", "Nobody", ["classifier-study", run, "--holdout", "Nobody", "--steps", "1"]),
        ("clean-run-not-a-run", "is not a run directory", ["clean-run", "$IN/empty"]),
    ]  # fmt: skip
    return _cases("ganwriting", rows)


def reliability_cases() -> list[Case]:
    """Learning rates, epochs, start epochs, checkpoint structure and output folders (issue 21's cases)."""
    bad = "$RUNS/bad"
    user = "$IN/userdir"  # a folder of the user's: an input scene and notes, never to be replaced or deleted
    m1 = ["train", *as_sets(tiny("m1"))]
    return [
        *_cases("m1", [
            ("lr-negative", "a learning rate cannot be negative", [*m1, "--lr", "-1"]),
            ("lr-nan", "'nan' is not a finite number", [*m1, "--lr", "nan"]),
            ("max-epochs-zero", "max_epochs must be at least 1", [*m1, "--set", "train.max_epochs=0"]),
            ("extract-into-user-folder", "already holds files this command did not write",
             ["extract", "$RUNS/m1", f"{user}/scene.npy", "-o", user, "--format", "npy"]),
            ("extract-onto-its-input", "is an input of this command",
             ["extract", "$RUNS/m1", f"{user}/scene.npy", "-o", f"{user}/scene.npy", "--format", "h5",
              "--overwrite"]),
            ("extract-onto-a-file", "already exists; pass --overwrite",
             ["extract", "$RUNS/m1", "-o", f"{user}/NOTES.txt", "--format", "h5"]),
            ("model-config-nested-1000", "nested", ["sample", f"{bad}/m1_model_deep", "-o", "$OUT/s.png"]),
        ]),
        *_cases("dcgan", [
            ("model-config-huge", "needs", ["sample", f"{bad}/dcgan_model_huge"]),
            ("lr-negative", "a learning rate cannot be negative", ["train", *as_sets(tiny("dcgan")), "--lr-g", "-1"]),
            ("lr-inf", "'inf' is not a finite number", ["train", *as_sets(tiny("dcgan")), "--lr-d", "inf"]),
        ]),
        *_cases("hvae", [
            ("lr-nan-set", "optim.lr: expected a finite number",
             ["train", *as_sets(tiny("hvae")), "--set", "optim.lr=nan"]),
            ("resume-state-wrong-structure", "is not a training state",
             ["train", *as_sets(tiny("hvae")), "--resume", f"{bad}/hvae_ckpt_state_struct/step"]),
            ("resume-state-wrong-types", "is not a training state",
             ["train", *as_sets(tiny("hvae")), "--resume", f"{bad}/hvae_ckpt_state_types/step"]),
        ]),
        *_cases("vqgan", [
            ("lr-negative", "a learning rate cannot be negative",
             ["train-vqgan", *as_sets(tiny("vqgan", "TINY_VQ")), "--set", "optim.lr_d=-0.5"]),
            ("negatives-into-user-folder", "already holds files this command did not write",
             ["make-negatives", "$RUNS/gpt", "-n", "2", "-o", user]),
        ]),
        *_cases("ganwriting", [
            ("model-config-huge", "needs", ["generate", f"{bad}/gw_model_huge"]),
            ("start-epoch-superscript", "start epoch must be 0, a saved epoch N or 'auto'",
             ["train", "\u00b2", *as_sets(tiny("ganwriting"))]),
            ("lr-negative", "a learning rate cannot be negative",
             ["train", *as_sets(tiny("ganwriting")), "--lr-gen", "-1"]),
        ]),
        *_cases("gencore", [
            ("verify-manifest-files-null", "no table of files", ["verify", f"{bad}/hvae_manifest_files_null"]),
            ("verify-manifest-entry-escapes", "bad entry", ["verify", f"{bad}/hvae_manifest_escape"]),
        ]),
    ]


def data_rule_cases() -> list[Case]:
    """Mixed image folders (loose images beside sub-folders), damaged or crafted MNIST files, weight files and first
    stages that do not fit (the data-rule items of the reliability issue; hostile paths: test_hostile_paths.py)."""
    bad = "$RUNS/bad"
    good = "$IN/img/good.png"
    stylize = ["stylize", good, good, "--size", "32", "--steps", "1", "--vgg-weights"]
    d = ["train", *as_sets(tiny("dcgan"))]
    lpips = ["train-vqgan", *as_sets(tiny("vqgan", "TINY_VQ")), "--perceptual", "lpips", "--set",
             "loss.lpips_weights='$IN/weights/heads.safetensors'", "--set"]  # fmt: skip
    return [
        *_cases("dcgan", [
            ("data-mixed-folder", "mixed is ambiguous: it holds 3 loose image(s) and sub-folder(s) with images "
             "(thumbs/ 2)", [*d, "--data", "$IN/mixed"]),
            ("data-mnist-zero-byte", "mnist_zero/MNIST/raw/train-images-idx3-ubyte: empty file",
             [*d, "--data", "mnist:$IN/mnist_zero"]),
            ("data-mnist-text", "train-images-idx3-ubyte: not an idx image file (N×28×28) (bad header)",
             [*d, "--data", "mnist:$IN/mnist_text"]),
            ("data-mnist-crafted-pickle", "processed/training.pt: refused by PyTorch's weights-only unpickler, "
             "nothing in it ran (it would call exec)", [*d, "--data", "mnist:$IN/mnist_pickle"]),
            ("stylize-vgg-wrong-keys", "wrong_keys.safetensors does not hold vgg19 ImageNet weights: 31 missing "
             "key(s): features.0.bias, features.2.weight", [*stylize, "$IN/weights/wrong_keys.safetensors"]),
            ("stylize-vgg-not-a-state-dict", "vgg19_list.pt does not hold vgg19 ImageNet weights: it holds a list",
             [*stylize, "$IN/weights/vgg19_list.pt"]),
        ]),
        *_cases("hvae", [
            ("data-mixed-folder", "mixed is ambiguous: it holds 3 loose image(s)",
             ["train", *as_sets(tiny("hvae")), "--data", "$IN/mixed"]),
            ("data-only-subfolders", "only in sub-folders (sub/ 1): a CAPTCHA folder is flat",
             ["train", *as_sets(tiny("hvae")), "--data", "$IN/only_subfolders"]),
        ]),
        *_cases("vqgan", [
            ("sample-foreign-vqgan", "gpt_foreign_vqgan/vqgan does not belong to the transformer in "
             "$RUNS/bad/gpt_foreign_vqgan/gpt: the transformer reads 32 codes", ["sample", f"{bad}/gpt_foreign_vqgan"]),
            ("lpips-vgg-wrong-keys", "wrong_keys.safetensors does not hold torchvision's VGG16 ImageNet weights: 25 "
             "missing key(s)", [*lpips, "loss.vgg_weights='$IN/weights/wrong_keys.safetensors'"]),
            ("data-mixed-folder-too-few", "mixed: 5 images are too few for batch size 8 and a holdout",
             ["train-vqgan", *as_sets(tiny("vqgan", "TINY_VQ")), "--data", "$IN/mixed"]),
        ]),
        *_cases("ganwriting", [
            ("folders-mixed", "folders/mixed is ambiguous: it holds 1 loose image(s) and sub-folder(s) with images "
             "(gClef/ 1)", ["train", *as_sets(tiny("ganwriting")), "--data", "$IN/gw/folders/mixed"]),
            ("folders-nested-in-class", "nested/gClef is ambiguous: it holds 1 loose image(s) and sub-folder(s) with "
             "images (thumbs/ 1)", ["read-classes", "$IN/gw/folders/nested", "-o", "$OUT/i.txt"]),
        ]),
    ]  # fmt: skip


def all_cases() -> list[Case]:
    """Every row of the table."""
    return [*gencore_cases(), *dcgan_cases(), *hvae_cases(), *m1_cases(), *vqgan_cases(), *ganwriting_cases(),
            *reliability_cases(), *data_rule_cases()]
