"""One vocabulary of options across the packages: the same idea has the same config key (and flag) everywhere.

Walks the config class of every training command in the package registry:
- learning rates, Adam betas, weight decay and the EMA of the weights live under ``optim``
  (``optim.lr`` or ``optim.lr_<model>``, ``optim.beta1``/``beta2``, ``optim.weight_decay``, ``optim.ema_decay``);
- evaluation sizes under ``eval`` (``eval.samples``, ``eval.batch_size``), never as top-level ``eval_*`` keys;
- gradient clipping is ``train.grad_clip`` only; batch size and precision are ``train.*``;
- every renamed key of an earlier layout points at a key that exists, and no README still documents the old one.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from gencore.config import default_value, renamed_keys
from gencore.registry import packages

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [(name, command) for name, spec in sorted(packages().items()) for command in spec.train_commands]
IDS = [f"{name}:{command.name}" for name, command in COMMANDS]

#: Keys that look like the shared vocabulary but mean something else (with the reason).
OTHER_MEANING = {
    "model.quantizer.ema_decay",  # vqgan: the running means of the codebook, not an average of the weights
}


def dotted_fields(cls: type, prefix: str = "") -> list[str]:
    """Every leaf key of a config class, dotted."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.extend(dotted_fields(tp, f"{prefix}{f.name}."))
        else:
            out.append(prefix + f.name)
    return out


def _section(key: str) -> str:
    return key.rsplit(".", 1)[0] if "." in key else ""


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=IDS)
def test_shared_ideas_have_shared_keys(name, command):
    keys = [k for k in dotted_fields(command.config_class()) if k not in OTHER_MEANING]
    leaf = {k: k.rsplit(".", 1)[-1] for k in keys}
    misplaced = [
        k for k in keys
        if (re.fullmatch(r"lr(_[a-z]+)?", leaf[k]) and _section(k) != "optim")
        or (leaf[k] in ("beta1", "beta2", "betas", "weight_decay", "ema_decay") and _section(k) != "optim")
        or (leaf[k] == "grad_clip" and k != "train.grad_clip")
        or (leaf[k] in ("batch_size", "precision") and _section(k) not in ("train", "eval"))
        or re.match(r"eval_", k) or leaf[k] in ("eval_samples", "eval_batch", "eval_images", "num_eval")
        or (leaf[k] == "betas")
    ]  # fmt: skip
    assert not misplaced, f"{name}: keys outside the shared vocabulary: {misplaced}"
    learning_rates = [k for k in keys if re.fullmatch(r"optim\.lr(_[a-z])?", k)]
    assert learning_rates, f"{name}: no optim.lr or optim.lr_<model> key"
    if any(k.startswith("eval.") for k in keys):
        assert "eval.batch_size" in keys, f"{name}: an eval section without eval.batch_size"


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=IDS)
def test_renamed_keys_point_at_existing_keys(name, command):
    cls = command.config_class()
    keys = set(dotted_fields(cls))
    for rename in renamed_keys(cls):
        assert rename.old not in keys, f"{name}: {rename.old} is renamed but still a key"
        for target in rename.targets:
            assert target in keys, f"{name}: {rename.old} -> {target}, which is not a key"
            default_value(cls, target)


def _readme(name: str) -> Path:
    folder = "core" if name == "gencore" else name
    return ROOT / "packages" / folder / "README.md"


def test_no_readme_documents_an_old_key():
    """A backticked old key (`tips.lr_g`, `--set epochs=10`...) in a package's README or the root README is stale
    documentation (a paragraph that says "earlier names" lists them on purpose). An old key without a dot that
    is also the last part of a current key (`lr`, `eval_every_epochs`) counts only as a setting (`lr=...`)."""
    stale = []
    for name, command in COMMANDS:
        cls = command.config_class()
        leaves = {k.rsplit(".", 1)[-1] for k in dotted_fields(cls)}
        for rename in renamed_keys(cls):
            value = r"=[^`]*" if "." not in rename.old and rename.old in leaves else r"(=[^`]*)?"
            pattern = re.compile(r"`(--set )?" + re.escape(rename.old) + value + "`")
            for readme in (_readme(name), ROOT / "README.md"):
                text = readme.read_text(encoding="utf-8")
                # a paragraph that names the old keys as such ("the earlier names ... still load") is not stale
                for paragraph in text.split("\n\n"):
                    if pattern.search(paragraph) and "earlier names" not in " ".join(paragraph.split()):
                        stale.append(f"{readme.relative_to(ROOT)}: `{rename.old}`")
    assert not stale, sorted(set(stale))
