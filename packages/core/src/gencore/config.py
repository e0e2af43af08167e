"""Dataclass configs: defaults in code, values from TOML/JSON files, ``--set key=value`` overrides.

A config is a (possibly nested) dataclass. :func:`build_config` layers, in order: the dataclass defaults, a
config file, ``--set`` overrides, then explicit CLI flags. Every value is checked against the field's type;
unknown keys and wrong types raise :class:`~gencore.errors.ConfigError` naming the key (with a suggestion for
typos), so a mistyped option never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from gencore.errors import ConfigError
from gencore.fileio import atomic_write_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

T = TypeVar("T")

__all__ = [
    "build_config", "from_dict", "to_dict", "load_file", "load_run_config", "save_config", "parse_override",
    "apply_overrides", "config_changes", "check_depth", "MAX_DEPTH", "MAX_SEED",
]  # fmt: skip

#: Deepest nesting of tables and lists accepted in a config (the deepest real one has 3 levels).
MAX_DEPTH = 32
#: Seeds are used as torch seeds (64-bit) and offset per process and per step: keep them well inside.
MAX_SEED = 2**62


def check_depth(data: Any, where: str, limit: int = MAX_DEPTH) -> None:
    """Raise ConfigError when ``data`` nests tables/lists deeper than ``limit`` (checked without recursion, so a
    hostile file cannot exhaust the stack)."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, (list, tuple)) else ()
        for child in children:
            if isinstance(child, (dict, list, tuple)):
                if depth + 1 > limit:
                    raise ConfigError(f"{where}: nested more than {limit} levels deep")
                stack.append((child, depth + 1))


def to_dict(config: Any) -> dict[str, Any]:
    """Return a JSON-ready nested dict of a dataclass config."""
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"expected a dataclass instance, got {type(config).__name__}")
    return json.loads(json.dumps(dataclasses.asdict(config)))


def save_config(config: Any, path: str | Path) -> None:
    """Write ``config`` as indented JSON (atomically: temporary file, then rename)."""
    atomic_write_text(Path(path), json.dumps(to_dict(config), indent=2, sort_keys=False) + "\n")


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a ``.toml`` or ``.json`` config file into a dict; malformed files raise ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is not content
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"config file {path} must end in .toml or .json")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid {path.suffix[1:].upper()}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"config file {path}: nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table/object at the top level")
    check_depth(data, f"config file {path}")
    return data


def load_run_config(cls: type[T], run_dir: str | Path) -> T:
    """The config a run was trained with (``RUN/config.json``, written by the Trainer) as a ``cls`` instance."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.json)")
    return from_dict(cls, load_file(path))


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``key: old -> new`` for every dotted key whose value differs between two config dicts (nested sections
    compared key by key; a key on one side only shows as ``(absent)``), in sorted order."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out.extend(config_changes(a, b, f"{prefix}{key}."))
        elif _normalise(a) != _normalise(b):
            out.append(f"{prefix}{key}: {_show(a)} -> {_show(b)}")
    return out


_ABSENT = object()


def _normalise(value: Any) -> Any:
    """JSON-like view (tuples as lists) so that a config read back from config.json equals the one built."""
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _normalise(v) for k, v in value.items()}
    return value


def _show(value: Any) -> str:
    return "(absent)" if value is _ABSENT else json.dumps(_normalise(value), default=str)


def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against type ``tp`` (converting harmless cases such as int -> float)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        if len(others) == 1:  # Optional[X]: X's own message says more ("expected a finite number")
            return _coerce(value, others[0], key)
        for arg in others:
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {' or '.join(_type_name(a) for a in args)}, got {_short(value)}")
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ConfigError(f"{key}: expected one of {_type_name(tp)}, got {_short(value)}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table of {tp.__name__} options, got {_short(value)}")
        return from_dict(tp, value, prefix=f"{key}.")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {_short(value)}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{key}: expected {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {_short(value)}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {_short(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {_short(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                raise ConfigError(f"{key}: {value} is too large for a number") from None
            if not math.isfinite(number):
                raise ConfigError(f"{key}: expected a finite number, got {_short(value)}")
            return number
        raise ConfigError(f"{key}: expected a number, got {_short(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {_short(value)}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {_short(value)}")


def _short(value: Any) -> str:
    """``repr(value)``, cut to one readable line (a 400-digit number or a huge list would flood the error)."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def _unknown_key(cls: type, key: str, prefix: str) -> ConfigError:
    names = [f.name for f in dataclasses.fields(cls)]
    close = difflib.get_close_matches(key, names, n=1)
    hint = f" (did you mean {prefix}{close[0]}?)" if close else f" (known: {', '.join(names)})"
    return ConfigError(f"unknown config key {prefix}{key}{hint}")


def _is_lr(name: str) -> bool:
    return name == "lr" or name.startswith("lr_") or name.endswith("_lr")


def _is_seed(name: str) -> bool:
    return name == "seed" or name.endswith("_seed")


def _check_convention(name: str, value: Any, key: str) -> Any:
    """Ranges that hold for a field by its name in every package's config: learning rates (``lr``, ``lr_*``,
    ``*_lr``) are not negative (0 freezes a model), seeds (``seed``, ``*_seed``) lie in [0, MAX_SEED]."""
    if _is_lr(name) and isinstance(value, float) and value < 0:
        raise ConfigError(f"{key}: a learning rate cannot be negative, got {_short(value)}")
    if _is_seed(name) and isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_SEED:
        raise ConfigError(f"{key}: a seed must lie in [0, 2**62], got {_short(value)}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a nested dict, checking keys and types."""
    hints = _type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown_key(cls, key, prefix)
        kwargs[key] = _check_convention(key, _coerce(value, hints[key], prefix + key), prefix + key)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid {prefix.rstrip('.') or cls.__name__} config: {exc}") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b=value`` into (["a", "b"], parsed value); the value is read as TOML, else kept as a string.

    A double-quoted value that TOML rejects is read as a JSON string: the CLIs pass their flags as
    ``key=<json.dumps(value)>``, and JSON writes characters outside the BMP (emoji in a path) as surrogate-pair
    escapes that TOML forbids, which would otherwise leave the quotes and escapes in the value.
    """
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set expects key=value, got {text!r}")
    if raw.count("[") + raw.count("{") > MAX_DEPTH:  # TOML's parser recurses once per bracket
        raise ConfigError(f"--set {key}: nested more than {MAX_DEPTH} levels deep")
    try:
        parsed = tomllib.loads(f"v = {raw}")
        if list(parsed) != ["v"]:  # "1\nb=2" would otherwise keep 1 and drop the rest without a word
            raise ConfigError(f"--set {key}: {raw!r} is more than one value (a line break in it?)")
        value = parsed["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # bare words such as --set precision=bf16
        if raw.strip().startswith('"'):
            try:
                decoded = json.loads(raw)
                decoded.encode("utf-8")  # a lone surrogate would fail later, in a path or a saved config
                value = decoded
            except ValueError:  # UnicodeEncodeError is one
                pass
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` strings to a nested dict (in place) and return it."""
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text}: {part} is not a table")
            node = child
        node[path[-1]] = value
    return data


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def build_config(
    cls: type[T],
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    flags: dict[str, Any] | None = None,
    base: list[str] | tuple[str, ...] = (),
) -> T:
    """Layer defaults < ``base`` (``key=value``: a preset) < ``config_file`` < ``overrides`` (``key=value``) <
    ``flags`` (dotted keys, None = unset)."""
    data = to_dict(cls())
    apply_overrides(data, list(base))
    if config_file is not None:
        _merge(data, load_file(config_file))
    apply_overrides(data, list(overrides))
    for key, value in (flags or {}).items():
        if value is not None:
            _merge(data, _nest(key.split("."), value))
    return from_dict(cls, data)


def _nest(path: list[str], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {path[-1]: value}
    for part in reversed(path[:-1]):
        out = {part: out}
    return out
