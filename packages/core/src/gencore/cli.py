"""Shared click pieces: the common training options and the one error path of every package CLI.

Bad input ends as ``error: <one line>`` on stderr with exit code 2 (a NaN stop: 3), no traceback unless
``--debug`` (or ``GENCORE_DEBUG=1``). Every command built with :class:`Command` (and every command of a
:class:`Group`) gets ``--debug`` automatically; its callback never sees it.
"""

# Import rule (tests/test_imports.py checks it): this module and what it imports at the top (click, the standard
# library, gencore.config, gencore.errors, gencore.fileio) load no torch, so every package CLI and `gencore --help`
# answer without it. Torch-heavy modules (gencore.checkpoint, gencore.demo...) are imported inside the functions
# and command bodies that use them, when they run; such function-level imports are for laziness only, never to
# hide an import cycle.

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from gencore.config import (
    MAX_SEED,
    _merge,
    build_config,
    default_value,
    dumps_toml,
    field_doc,
    field_type,
    fill_added_keys,
    from_dict,
    load_file,
    migrate_keys,
    to_dict,
)
from gencore.errors import CheckpointError, ConfigError, GencoreError
from gencore.progress import QUIET_KEY
from gencore.train.config import TrainConfig

__all__ = [
    "Command", "Group", "add_alias", "training_options", "config_from_options", "print_config", "run_fit", "main",
    "SEED", "FINITE", "TRAIN_FLAGS", "ConfigFlag", "ConfigOption", "config_options", "device_option",
    "resolve_device", "trains_on_cpu", "pick_preset",
]  # fmt: skip


class _Finite(click.ParamType):
    """A float that is a number: click's FLOAT takes "nan" and "inf", which no option of ours means."""

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


#: Click type of every float option: finite numbers only.
FINITE = _Finite()
#: Click type of every ``--seed``: what torch, NumPy and Python all accept, with room for per-process offsets.
SEED = click.IntRange(0, MAX_SEED)

T = TypeVar("T")

#: Common option name -> config key it sets.
TRAIN_FLAGS = {
    "output_dir": "train.output_dir",
    "seed": "train.seed",
    "max_steps": "train.max_steps",
    "batch_size": "train.batch_size",
    "precision": "train.precision",
    "channels_last": "train.channels_last",
    "compile": "train.compile",
    "log_every": "train.log_every",
    "sample_every": "train.sample_every",
    "eval_every": "train.eval_every",
    "checkpoint_every": "train.checkpoint_every",
}


@dataclass(frozen=True)
class ConfigFlag:
    """A command-line flag that sets config key(s): ``ConfigFlag("--lr-g", "optim.lr_g")``.

    Its click type, choices and help come from the config field (:func:`config_options`); ``help``, ``type`` and
    ``metavar`` override them where the flag reads differently from the key (``--data`` for ``data.source``),
    ``convert`` maps the flag's value to the key's (``"3"`` -> 3), and ``keys`` may name several keys that the flag
    sets to the same value.
    """

    flag: str
    keys: str | tuple[str, ...]
    help: str | None = None
    type: Any = None
    metavar: str | None = None
    convert: Callable[[Any], Any] | None = None
    aliases: tuple[str, ...] = ()  # earlier spellings of the flag, still accepted

    @property
    def key_list(self) -> tuple[str, ...]:
        """The dotted config key(s) the flag sets."""
        return (self.keys,) if isinstance(self.keys, str) else tuple(self.keys)


def _click_type(tp: Any, flag: str) -> tuple[Any, bool]:
    """(click type, is a boolean flag) for a config field's type."""
    import types
    import typing

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        others = [a for a in args if a is not type(None)]
        if len(others) == 1:
            return _click_type(others[0], flag)
    if origin is typing.Literal and all(isinstance(a, str) for a in args):
        return click.Choice(list(args)), False
    if tp is bool:
        return None, True
    if tp is int:
        return click.INT, False
    if tp is float:
        return FINITE, False
    if tp is str:
        return click.STRING, False
    raise TypeError(f"{flag}: no command-line form for a config field of type {tp!r}; give ConfigFlag a type")


class ConfigOption(click.Option):
    """A click option made by :func:`config_options`: it knows the config keys it sets, and its help text (the
    field's comment in the config class, with the default) is read only when ``--help`` shows it."""

    def __init__(self, spec: ConfigFlag, config_class: type) -> None:
        self.spec, self.config_class = spec, config_class
        tp = spec.type
        is_flag = False
        if tp is None:
            tp, is_flag = _click_type(field_type(config_class, spec.key_list[0]), spec.flag)
        name = "cfg__" + spec.flag.lstrip("-").replace("-", "_")
        spellings = (spec.flag, *spec.aliases)
        decls = [f"{f}/--no-{f[2:]}" if is_flag else f for f in spellings] + [name]
        super().__init__(decls, type=None if is_flag else tp, default=None, metavar=spec.metavar)
        self._help_ready = False

    def _resolve_help(self) -> None:
        if self._help_ready:
            return
        self._help_ready = True
        if self.spec.help is not None:
            self.help = self.spec.help
            return
        key = self.spec.key_list[0]
        text = field_doc(self.config_class, key)
        text = text[0].upper() + text[1:] if text else ""
        default = default_value(self.config_class, key)
        shown = "off" if default is None else json.dumps(default) if isinstance(default, (list, dict)) else default
        if isinstance(default, bool):
            shown = "on" if default else "off"
        keys = ", ".join(self.spec.key_list)
        self.help = f"{text}{'.' if text and not text.endswith('.') else ''} ({keys}) [default: {shown}]".strip()

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self._resolve_help()
        return super().get_help_record(ctx)

    def config_values(self, value: Any) -> dict[str, Any]:
        """The config keys this option sets for its parsed ``value`` (nothing when the flag was not given)."""
        if value is None:
            return {}
        value = self.spec.convert(value) if self.spec.convert is not None else value
        return {key: value for key in self.spec.key_list}


def config_options(config_class: type, *flags: ConfigFlag | str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Add one option per config key to a command (a dotted key ``"optim.lr_g"`` gives ``--lr-g``): its type and
    choices from the field's type, its help from the field's comment in the config class and its default from
    ``config_class()``. :func:`config_from_options` moves the given values into the config, above ``--set``."""
    specs = [f if isinstance(f, ConfigFlag) else ConfigFlag("--" + f.rsplit(".", 1)[-1].replace("_", "-"), f)
             for f in flags]  # fmt: skip

    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        params = getattr(fn, "__click_params__", [])
        for spec in reversed(specs):
            params.append(ConfigOption(spec, config_class))
        fn.__click_params__ = params  # type: ignore[attr-defined]
        return fn

    return decorate


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text


class Command(click.Command):
    """A click command whose user-input errors become one line and an exit code instead of a traceback, with
    ``--debug`` (full tracebacks) and ``--quiet`` (no progress bars: :mod:`gencore.progress`) on every command."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not any(p.name == "debug" for p in self.params):
            self.params.append(
                click.Option(["--debug"], is_flag=True, help="Show full tracebacks instead of one-line errors.")
            )
        self._owns_quiet = not any(p.name == "quiet" for p in self.params)
        if self._owns_quiet:
            self.params.append(click.Option(["--quiet"], is_flag=True, help="No progress bars (shown only on a "
                                            "terminal anyway; also GENCORE_PROGRESS=0)."))  # fmt: skip

    def invoke(self, ctx: click.Context) -> Any:
        if self._owns_quiet and ctx.params.pop("quiet", False):
            ctx.meta[QUIET_KEY] = True
        debug = bool(ctx.params.pop("debug", False)) or os.environ.get("GENCORE_DEBUG") == "1"
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except GencoreError as exc:
            if debug:
                raise
            click.echo(f"error: {_one_line(exc)}", err=True)
            ctx.exit(exc.exit_code)
        except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
            if debug:
                raise
            click.echo(f"error: {exc.strerror or exc}: {exc.filename}", err=True)
            ctx.exit(2)
        except OSError as exc:  # disk full and friends: the previous checkpoint is untouched (atomic writes)
            if debug:
                raise
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            click.echo(f"error: {exc.strerror or _one_line(exc)}{where}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


class Group(click.Group):
    """A click group whose subcommands are :class:`Command` s."""

    command_class = Command
    group_class = type  # nested groups are Groups too


def add_alias(group: click.Group, command: click.Command, name: str, canonical: str) -> None:
    """Keep an older command name working without listing it twice in ``--help``: ``name`` runs ``command``
    (hidden), after a one-line note on stderr that it is now ``canonical``."""
    import copy

    alias = copy.copy(command)
    alias.name, alias.hidden = name, True
    run = command.callback

    def noted(*args: Any, **kwargs: Any) -> Any:
        click.echo(f"note: '{name}' is an older name of '{canonical}'", err=True)
        return run(*args, **kwargs) if run is not None else None

    alias.callback = noted
    group.add_command(alias, name)


@dataclass
class _TrainSection:
    """The ``train`` section that every run config nests: where the shared flags made by :func:`config_options`
    read their type and help."""

    train: TrainConfig = field(default_factory=TrainConfig)


def training_options(
    defaults_output_dir: str | None = None, exclude: tuple[str, ...] = ()
) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Add ``--config --set --print-config --output-dir --seed --resume --max-steps --batch-size --precision
    --channels-last --compile --log-every --sample-every --eval-every --checkpoint-every --report-to`` to a command.

    ``exclude`` names options (by parameter name, e.g. ``"eval_every"``) that the command defines itself with a
    meaning of its own; the command then pops them before :func:`config_from_options`.
    """

    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        options = [
            ("config_file", click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                                         help="TOML, JSON or YAML config file; values override the defaults.")),
            ("overrides", click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                                       help="Override one config value, e.g. --set train.grad_clip=1.0 "
                                       "(repeatable).")),
            ("print_config", click.option("--print-config", type=click.Choice(["toml", "json"]), is_flag=False,
                                          flag_value="toml", default=None,
                                          help="Print the resolved configuration (TOML, or JSON with "
                                          "--print-config json) in a form that --config reads back, and exit "
                                          "without training.")),
            ("output_dir", click.option("--output-dir", type=click.Path(file_okay=False), default=None,
                                        help=f"Run directory [default: {defaults_output_dir or 'from the config'}].")),
            ("seed", click.option("--seed", type=SEED, default=None, help="Random seed (data order, init, noise).")),
            ("resume", click.option("--resume", default=None, metavar="auto|PATH",
                                    help="Continue a run: 'auto' = newest intact checkpoint in the run directory, "
                                    "or a path.")),
            ("max_steps", click.option("--max-steps", type=click.IntRange(min=1), default=None,
                                       help="Number of updates.")),
            ("batch_size", click.option("--batch-size", type=click.IntRange(min=1), default=None,
                                        help="Batch size per process.")),
            ("precision", click.option("--precision", type=click.Choice(["no", "fp16", "bf16"]), default=None,
                                       help="Mixed precision.")),
            ("channels_last", click.option("--channels-last/--no-channels-last", default=None,
                                           help="NHWC memory layout for the convolutions (same values; faster on "
                                           "most GPUs).")),
            ("compile", click.option("--compile", metavar="BACKEND", default=None,
                                     help="torch.compile the trained models with this backend ('inductor'; "
                                     "'no' = off).")),
            ("log_every", click.option("--log-every", type=click.IntRange(min=1), default=None, metavar="N",
                                       help="Console line and metrics.csv row every N updates (train.log_every).")),
            ("sample_every", click.option("--sample-every", type=click.IntRange(min=0), default=None, metavar="N",
                                          help="Sample grid every N updates, 0 = only at the end "
                                          "(train.sample_every).")),
            ("eval_every", click.option("--eval-every", type=click.IntRange(min=0), default=None, metavar="N",
                                        help="Evaluation every N updates, 0 = only at the end (train.eval_every).")),
            ("checkpoint_every", click.option("--checkpoint-every", type=click.IntRange(min=0), default=None,
                                              metavar="N", help="Full training state every N updates, 0 = only at "
                                              "the end (train.checkpoint_every).")),
            ("report_to", config_options(_TrainSection, ConfigFlag("--report-to", "train.report_to",
                                                                   metavar="TRACKER[,TRACKER]"))),
        ]  # fmt: skip
        unknown = set(exclude) - {name for name, _ in options}
        if unknown:
            raise ValueError(f"training_options(exclude=...): no such option {sorted(unknown)}")
        for name, option in reversed(options):
            if name not in exclude:
                fn = option(fn)
        return fn

    return decorate


def device_option(fn: Callable[..., T]) -> Callable[..., T]:
    """Add ``--device auto|cpu|cuda|cuda:N|mps`` (parameter ``device``, a string) to a command that runs a model;
    the command body turns it into a ``torch.device`` with :func:`resolve_device` (this module loads no torch)."""
    return click.option(
        "--device", default="auto", show_default=True, metavar="auto|cpu|cuda|cuda:N|mps",
        help="Where the model runs: auto = the accelerator when there is one (CUDA, then MPS), else the CPU.",
    )(fn)  # fmt: skip


def inception_weights_option(fn: Callable[..., T]) -> Callable[..., T]:
    """Add ``--inception-weights PATH`` (parameter ``inception_weights``) to an evaluation that offers
    ``--features inception`` (:mod:`gencore.inception` reads the file; nothing is ever downloaded)."""
    return click.option(
        "--inception-weights", type=click.Path(dir_okay=False), default=None,
        help="torchvision's Inception v3 weight file [default: inception_v3_google-0cc3c7bd.pth in the torch hub "
        "cache's checkpoints/].",
    )(fn)  # fmt: skip


def _auto_device() -> Any:
    """What ``--device auto`` means here: the CUDA device when there is one, then Apple's MPS, else the CPU
    (gencore.devicecheck replaces it by the meta device for its dry runs)."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def trains_on_cpu(cpu: bool = False) -> bool:
    """Whether a Trainer built here trains on the CPU: its config's ``train.cpu`` (``cpu``), ``accelerate launch
    --cpu`` (the ``ACCELERATE_USE_CPU`` it sets) or no CUDA or MPS device on this machine, as the Accelerator
    decides."""
    from accelerate.utils import parse_flag_from_env

    return bool(cpu) or parse_flag_from_env("ACCELERATE_USE_CPU") or _auto_device().type == "cpu"


def pick_preset(preset: str | None, cpu_preset: str, accelerator_preset: str, cpu: bool = False) -> str:
    """The preset a training command uses: ``preset`` as given, or for ``auto`` (or None) ``cpu_preset`` where
    training runs on the CPU (:func:`trains_on_cpu`) and ``accelerator_preset`` on a GPU.

    For a command whose published configuration is sized for a GPU, where an update takes most of a minute on a
    CPU. A continued run is not changed by it: its saved settings sit above every preset
    (:func:`config_from_options`), so the command should say which preset it picked only for a fresh run."""
    if preset not in (None, "", "auto"):
        return preset
    return cpu_preset if trains_on_cpu(cpu) else accelerator_preset


def resolve_device(text: str | None) -> Any:
    """The ``torch.device`` of a ``--device`` value: ``auto`` (or None), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.

    A spelling outside these, or a device this machine lacks, is a one-line :class:`ConfigError`.
    """
    import torch

    value = (text or "auto").strip().lower()
    if value == "auto":
        return _auto_device()
    kind, _, index = value.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and (kind != "cuda" or not index.isdigit())):
        raise ConfigError(f"--device {text}: unknown device (auto, cpu, cuda, cuda:N or mps)")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {text}: no CUDA device is available here")
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            raise ConfigError(f"--device {text}: this machine has {count} CUDA device(s) (cuda:0 to cuda:{count - 1})")
        return torch.device(f"cuda:{int(index)}" if index else "cuda")
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(f"--device {text}: no MPS device is available here")
    return torch.device(kind)


def config_from_options(cls: type[T], options: dict[str, Any]) -> tuple[T, str | None]:
    """Build the config from the common options (popped from ``options``); returns (config, resume).

    A ``--resume PATH`` is verified here too, so a missing or damaged checkpoint is reported before any data is
    prepared or anything is written into the run directory. ``options["base"]`` (``key=value`` strings, e.g. a
    preset) sits under the config file, which sits under ``--set`` and the flags: those of :func:`config_options`
    and ``options["flags"]`` (dotted key -> value, None = not given) for what a command converts itself. With
    ``--print-config`` the resolved config is printed (:func:`print_config`) and the command exits with code 0.

    A resumed run keeps its own settings: with ``--resume`` (or ``options["resume_config"]``, ``"auto"`` for a
    command that resumes another way) the config of the checkpoint it continues (:func:`resumed_run_config`) sits
    above the defaults and the preset, and only ``--config``, ``--set`` and the flags change it, so a default that
    changed since the run started does not change the run.
    """
    flags = {key: options.pop(name, None) for name, key in TRAIN_FLAGS.items()}
    ctx = click.get_current_context(silent=True)
    for param in ctx.command.params if ctx is not None else ():
        if isinstance(param, ConfigOption):
            flags.update(param.config_values(options.pop(param.name, None)))
    flags.update(options.pop("flags", None) or {})
    base = options.pop("base", ())
    config_file, overrides = options.pop("config_file", None), options.pop("overrides", ())
    config = build_config(cls, config_file, overrides, flags, base=base)
    resume = options.pop("resume", None)
    run = resumed_run_config(cls, config, options.pop("resume_config", None) or resume)
    if run:
        config = build_config(cls, config_file, overrides, flags, base=base, run=run)
    print_format = options.pop("print_config", None)
    if print_format:
        click.echo(print_config(config, print_format, base), nl=False)
        ctx = click.get_current_context(silent=True)
        if ctx is not None:
            ctx.exit(0)
        sys.exit(0)
    if resume not in (None, "", "auto"):
        from gencore.checkpoint import verify_dir

        if not os.path.exists(resume):  # the Trainer's wording, for the same mistake
            raise CheckpointError(f"checkpoint not found: {resume}")
        verify_dir(resume)
    return config, resume


def resumed_run_config(cls: type, config: Any, resume: str | None) -> dict[str, Any] | None:
    """The settings of the run that ``resume`` continues: the ``config.json`` of its checkpoint in ``config``'s
    run directory (``"auto"``: the newest one by name; the Trainer still verifies what it loads), with earlier key
    names migrated, keys added since set to the run's values (:func:`gencore.config.fill_added_keys`), nested keys
    this version does not know left out and the run directory left to the command line.
    None for a fresh start, a checkpoint from outside the run directory (a warm start from another run takes this
    command's settings), a config with a section this config does not have (another package's run) or no
    readable config: the Trainer then compares and reports as before."""
    from pathlib import Path

    out = getattr(getattr(config, "train", None), "output_dir", None)
    if resume in (None, "") or out is None:
        return None
    checkpoints = Path(out) / "checkpoints"
    if resume == "auto":
        from gencore.checkpoint import list_checkpoints

        candidates = list(reversed(list_checkpoints(checkpoints)))
    elif Path(resume).resolve().parent == checkpoints.resolve():
        candidates = [Path(resume)]
    else:
        return None
    template = to_dict(cls())
    for checkpoint in candidates:
        try:
            data = json.loads((checkpoint / "config.json").read_text(encoding="utf-8-sig"))
        except (OSError, ValueError, RecursionError):
            continue
        if not isinstance(data, dict):
            continue
        try:
            data = fill_added_keys(cls, migrate_keys(cls, data, note=None))
        except (ConfigError, TypeError, ValueError):
            return None  # not this config's layout: the Trainer's comparison says what differs
        if not set(data) <= set(template):
            return None
        data = _known_keys(data, template)
        data.get("train", {}).pop("output_dir", None)
        return data
    return None


def _known_keys(data: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    """``data`` without the keys that ``template`` (a config's defaults) does not have: a run's saved config may
    hold keys of an earlier version that no longer mean anything."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in template:
            continue
        if isinstance(template[key], dict) and isinstance(value, dict):
            out[key] = _known_keys(value, template[key])
        else:
            out[key] = value
    return out


def print_config(config: Any, fmt: str = "toml", base: tuple[str, ...] | list[str] = ()) -> str:
    """The text of ``--print-config``: ``config`` (a dataclass) as TOML or JSON that ``--config`` reads back.

    TOML has no null: a ``None`` value is left out, which reads back as the value under the file (the defaults
    and ``base``, the command's preset). The TOML is read back here against those layers, and a config it would
    not reproduce is a ConfigError that asks for ``--print-config json`` instead of a file that changes the run.
    """
    import tempfile
    from pathlib import Path

    data = to_dict(config)
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    if fmt != "toml":
        raise ConfigError(f"--print-config: unknown format {fmt!r} (toml or json)")
    text = f"# resolved configuration of {type(config).__name__}; read back with --config FILE.toml\n"
    text += dumps_toml(data)
    with tempfile.TemporaryDirectory() as tmp:  # the check reads it the way --config will
        path = Path(tmp) / "config.toml"
        path.write_text(text, encoding="utf-8")
        under = to_dict(build_config(type(config), base=tuple(base)))
        read_back = from_dict(type(config), _merge(under, load_file(path)))
    if read_back != config:
        from gencore.config import config_changes

        changes = "; ".join(config_changes(data, to_dict(read_back)))
        raise ConfigError(f"--print-config: TOML cannot hold this config ({changes}): use --print-config json")
    return text


def run_fit(fit: Callable[[], Any]) -> None:
    """Run a training function returning a :class:`~gencore.train.FitResult` and exit with its code; the process
    group of a multi-process launch is closed before that (:func:`close_process_group`)."""
    try:
        result = fit()
    finally:
        close_process_group()
    code = getattr(result, "exit_code", 0)
    if code:
        sys.exit(code)


def close_process_group() -> None:
    """Destroy torch.distributed's default process group, if this process has one, before the interpreter exits:
    left to interpreter shutdown, a gloo group's threads can abort a rank after its work is done ("terminate called
    without an active exception", seen once in a two-process test), and PyTorch asks for it explicitly. Nothing
    to do, and torch not imported, for a single process."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(Exception):  # a group already broken by another rank's failure: exiting anyway
            dist.destroy_process_group()


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gencore")
def main() -> None:
    """gencore: the shared core of the generative-model packages (self-demo and checkpoint tools)."""


@main.command()
@training_options("runs/gencore-demo")
def demo(**options: Any) -> None:
    """Train a small convolutional VAE on procedurally drawn shapes (about a minute on CPU).

    Writes config.json, metrics.csv, losses.png, samples/*.png and checkpoints/ into the run directory, and the
    final model (config.json + model.safetensors) into <run>/model/.
    """
    from gencore.demo import DemoConfig, run_demo

    config, resume = config_from_options(DemoConfig, options)
    run_fit(lambda: run_demo(config, resume))


@main.command("demo-all")
@click.option("--only", multiple=True, metavar="PACKAGE", help="Only this package's demo (repeatable).")
@click.option("--list", "list_only", is_flag=True, help="Print the demo steps without running them.")
@click.option("--full", is_flag=True, help="The commands behind each package README's figures, at their sizes "
              "(what `make demo-full` runs; hours, see --list --full), report in runs/demo-full/.")
def demo_all(only: tuple[str, ...], list_only: bool, full: bool) -> None:
    """Run the demo of every installed package, in order (what `make demo` runs, about 10 minutes on 2 CPU
    cores): each package's registry entry lists its steps; each step resumes its run directory, so running it
    again continues."""
    from gencore.demos import check_demo_step, demo_specs, demo_steps, run_demos

    if list_only:
        for spec in demo_specs(only, full):
            if full:
                click.echo(f"# {spec.name}: about {spec.demo_full_minutes} min by its README's figures")
            for step in demo_steps(spec, full):
                check_demo_step(spec, step)
                click.echo(f"{spec.name} {' '.join(step)}")
        return
    timings = run_demos(only, echo=click.echo, full=full)
    click.echo(f"demo done: {len(timings)} steps in {sum(t for _, t in timings) / 60:.1f} min")


@main.command("demo-report")
@click.option("--only", multiple=True, metavar="PACKAGE", help="Only this package's section (repeatable).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="runs/demo/index.html", show_default=True)
def demo_report(only: tuple[str, ...], output: str) -> None:
    """Write the demo page again from what the demo runs left under runs/ (no step is run)."""
    from gencore.demo_report import write_report
    from gencore.demos import demo_specs

    click.echo(f"wrote {write_report(demo_specs(only), {}, output)}")


@main.command()
@click.argument("directory", type=click.Path())
def verify(directory: str) -> None:
    """Check a checkpoint or pretrained-model DIRECTORY against its manifest (sizes and SHA-256)."""
    from gencore.checkpoint import verify_dir

    verify_dir(directory)
    click.echo(f"ok: {directory}")
