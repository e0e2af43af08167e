"""A trained run on disk, as the commands after training read it: its model (``RUN/model``, or a model folder,
also one copied alone: it holds its run's config and text prior), its config, the prior over texts and layouts
of a conditioned model, held-out images, and the reader-based text metrics of ``hvae-captcha evaluate``.

Every function raises a one-line CheckpointError/ConfigError for a missing or broken piece.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch

from gencore.config import fill_added_keys, from_dict
from gencore.errors import CheckpointError, ConfigError
from gencore.results import read_json
from hvae_captcha.config import DataConfig, HVAEConfig
from hvae_captcha.data import CaptchaData, draw_layouts, load_data
from hvae_captcha.evaluate import evaluate_model, sample_text_accuracy
from hvae_captcha.model import HVAE
from hvae_captcha.reader import CaptchaReader, ReaderConfig, text_accuracy, train_reader
from hvae_captcha.textprior import FILE_NAME, TextPrior
from hvae_captcha.train import RUN_CONFIG_FILE, fit_text_prior, prepare_data

__all__ = ["locate", "eval_dir", "load_model", "run_config", "sampling_layouts", "text_prior", "held_out",
           "reader_metrics"]


def locate(run: str | Path) -> tuple[Path, Path | None]:
    """(model folder, run directory or None) of RUN: a run directory (``RUN/model``), its ``model/`` folder, or a
    model folder copied anywhere alone (no run directory)."""
    directory = Path(run)
    if (directory / "model" / "config.json").is_file():
        return directory / "model", directory
    parent = directory.resolve().parent
    if directory.resolve() == parent / "model" and (parent / "config.json").is_file():
        return directory, parent
    return directory, None


def eval_dir(run: str | Path) -> Path:
    """Where ``evaluate`` writes (and caches its reader): ``RUN/eval``, or ``eval/`` beside a model folder (never
    inside it: model/ holds only what its manifest lists)."""
    model_dir, run_dir = locate(run)
    return (run_dir if run_dir is not None else model_dir.parent) / "eval"


def load_model(run: str | Path, device: str | torch.device = "cpu") -> HVAE:
    """The trained model of a run directory (``RUN/model``) or of a model folder itself, in eval mode, on
    ``device``."""
    directory = locate(run)[0]
    if not (directory / "config.json").is_file():
        raise CheckpointError(f"no model in {run} (expected RUN_DIR with model/, or a model directory)")
    read_json(directory / "config.json")  # a one-line error for a corrupt file
    return HVAE.from_pretrained(directory, map_location=str(device)).eval()


def run_config(run: str | Path) -> HVAEConfig:
    """The config a run was trained with: ``RUN/config.json``, or for a model folder alone its own copy
    (``model/run_config.json``, written since model folders became self-contained)."""
    model_dir, run_dir = locate(run)
    path = run_dir / "config.json" if run_dir is not None else model_dir / RUN_CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{run} is not a run directory (no config.json and model/) nor a model folder with "
                          f"{RUN_CONFIG_FILE} (a model folder saved before they held one: give its run directory)")
    return from_dict(HVAEConfig, fill_added_keys(HVAEConfig, read_json(path)))


def sampling_layouts(run: str | Path, model: HVAE, texts: list[str] | None, seed: int) -> list[list[float]] | None:
    """Rendered-layout models: a layout per text, drawn by rendering it with the run's data settings (the
    defaults for a model folder that records none); None for the others."""

    if texts is None or model.config.text_layout != "rendered":
        return None
    model_dir, run_dir = locate(run)
    recorded = run_dir is not None or (model_dir / RUN_CONFIG_FILE).is_file()
    data = run_config(run).data if recorded else DataConfig()
    return draw_layouts(data, texts, seed)


def text_prior(run: str | Path, model: HVAE, log: Callable[[str], None] = print) -> TextPrior:
    """A conditioned model's prior over texts and layouts: ``model/text_prior.json``, else ``RUN/text_prior.json``
    (model folders saved before they held one), checked against ``model``; counted again on the training images
    for a run saved before either existed."""

    model_dir, run_dir = locate(run)
    candidates = [model_dir / FILE_NAME] + ([run_dir / FILE_NAME] if run_dir is not None else [])
    for path in candidates:
        if path.is_file():
            prior = TextPrior.load(path)
            m = model.config
            problem = prior.fits(m.vocabulary, m.text_length, m.width if m.text_layout == "rendered" else 0)
            if problem:
                raise CheckpointError(f"{path} does not belong to this model: {problem}")
            return prior
    if run_dir is None:
        raise ConfigError(f"{run} is a bare model directory without {FILE_NAME} (saved before model folders held "
                          f"one): drawing texts needs its run directory")  # fmt: skip
    config = run_config(run_dir)
    log(f"{candidates[-1]} is missing: counting texts and layouts of the run's training images ...")
    return fit_text_prior(config, prepare_data(config)[0])


def held_out(run: str | Path, source: str | None, num: int) -> tuple[HVAEConfig, CaptchaData]:
    """The run's held-out images (re-rendered from its config), or the images of ``source``."""

    config = run_config(run)
    if source is not None:
        config.data.source = source
        data = load_data(config.data, config.model, seed=config.train.seed)
        return config, data.subset(list(range(min(num, len(data.texts)))))
    if config.data.source != "render" and not Path(config.data.source).is_dir():
        raise ConfigError(f"the run's data folder {config.data.source} is not here (a model folder copied "
                          "elsewhere?): pass --data DIR")  # fmt: skip
    _, holdout = prepare_data(config)
    return config, holdout.subset(list(range(min(num, len(holdout.texts)))))


def reader_metrics(run: str | Path, config: HVAEConfig, model: HVAE, data: CaptchaData, steps: int,
                   temperature: float, seed: int, log: Callable[[str], None] = print) -> dict[str, float]:  # fmt: skip
    """Reader accuracy on the real held-out images and on samples for their texts (see hvae_captcha.reader)."""



    m = model.config
    device = model.device  # the reader is trained (or loaded) there too
    cached = eval_dir(run) / f"reader_{steps}"
    if (cached / "config.json").is_file():
        reader = CaptchaReader.from_pretrained(cached, map_location=str(device))
    else:
        log(f"training the text reader on the run's real CAPTCHAs ({steps} updates) ...")
        train_set, _ = prepare_data(config)
        reader_config = ReaderConfig(m.channels, m.height, m.width, m.vocabulary, m.text_length)
        reader = train_reader(train_set.images, train_set.texts, reader_config, steps, seed=seed, device=device)
        reader.save_pretrained(cached)
    real = text_accuracy(reader, data.images.float() / 255, data.texts)
    torch.manual_seed(seed)
    # reconstructions are as blurry as samples but show the right text: the reader's ceiling on decoder means
    with torch.no_grad():
        x = data.images.float() / 127.5 - 1
        recon = torch.cat([model.reconstruct(x[i : i + 64].to(device), model.encode_data(data, i, i + 64))
                           for i in range(0, len(x), 64)])  # fmt: skip
    rec = text_accuracy(reader, recon, data.texts)
    got = sample_text_accuracy(model, reader, data.texts, temperature, layouts=data.layouts)
    # how much the model gets out of the text: its ELBO with every image's own text minus with another image's
    # (texts rotated by one), in nats per image; about 0 when the text is ignored
    wrong = CaptchaData(data.images, data.texts[1:] + data.texts[:1], data.layouts)  # the glyphs stay where they are
    dims = math.prod(data.images.shape[1:]) * math.log(2)
    right_bpd = evaluate_model(model, data, 1, 64, device, seed=seed)["elbo_bits_per_dim"]
    wrong_bpd = evaluate_model(model, wrong, 1, 64, device, seed=seed)["elbo_bits_per_dim"]
    return {"reader_char_accuracy_real": real["char_accuracy"], "reader_text_accuracy_real": real["text_accuracy"],
            "reader_char_accuracy_reconstructions": rec["char_accuracy"],
            "sample_char_accuracy": got["char_accuracy"], "sample_text_accuracy": got["text_accuracy"],
            "sample_temperature": temperature, "text_information_nats": (wrong_bpd - right_bpd) * dims}  # fmt: skip
