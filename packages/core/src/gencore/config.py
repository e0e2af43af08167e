"""Dataclass configs: defaults in code, values from TOML/JSON/YAML files, ``--set key=value`` overrides.

A config is a (possibly nested) dataclass. :func:`build_config` layers, in order: the dataclass defaults, a
config file, ``--set`` overrides, then explicit CLI flags. Every value is checked against the field's type;
unknown keys and wrong types raise :class:`~gencore.errors.ConfigError` naming the key (with a suggestion for
typos), so a mistyped option never silently falls back to a default.

A key that was renamed stays readable: a run config class lists its :class:`Renamed` keys in a ``renamed_keys``
class attribute, and every layer (a config file, ``--set``, a saved run's ``config.json``) reads an old key under
its new name with a one-line note on stderr (:func:`migrate_keys`). A key added later whose default is not what
earlier runs did is listed as :class:`Added` in an ``added_keys`` class attribute: a saved run's config without it
is read with the value those runs had (:func:`fill_added_keys`), so that resuming one does not change it.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    "build_config", "from_dict", "to_dict", "Added", "Renamed", "fill_added_keys", "migrate_keys", "renamed_keys",
    "field_docs",
    "field_doc", "field_type", "default_value", "load_file", "load_run_config", "save_config", "parse_override",
    "apply_overrides", "config_changes", "check_depth", "check_betas", "dumps_toml", "MAX_DEPTH", "MAX_SEED",
    "MAX_NODES", "SUFFIXES",
]  # fmt: skip

#: Deepest nesting of tables and lists accepted in a config (the deepest real one has 3 levels).
MAX_DEPTH = 32
#: Seeds are used as torch seeds (64-bit) and offset per process and per step: keep them well inside.
MAX_SEED = 2**62
#: Most values (tables, lists and scalars, YAML aliases counted at every place they are used) a config file may
#: hold: a few hundred in the largest real one; a YAML "billion laughs" of nested aliases is refused by this.
MAX_NODES = 100_000
#: The config file formats that ``--config`` reads.
SUFFIXES = (".toml", ".json", ".yaml", ".yml")


def check_betas(section: Any, where: str = "optim") -> None:
    """Adam's ``beta1``/``beta2`` of a config section must lie in [0, 1): torch refuses others with a traceback when
    the optimizer is built, after the data is prepared; a ConfigError here is one line before anything runs."""
    for key in ("beta1", "beta2"):
        value = getattr(section, key)
        if not 0 <= value < 1:
            raise ConfigError(f"{where}.{key} must be in [0, 1) (Adam's betas), got {value}")


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
    """Read a ``.toml``, ``.json`` or ``.yaml``/``.yml`` config file into a dict; malformed files raise ConfigError.

    YAML is read with PyYAML's ``safe_load`` (no Python objects); its aliases are counted at every place they are
    used (:data:`MAX_NODES`), a self-referencing one is refused, and every table key must be a string.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ConfigError(f"config file {path} must end in .toml, .json, .yaml or .yml")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is not content
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            data = _load_yaml(text, path)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid {suffix[1:].upper()}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"config file {path}: nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table/object at the top level")
    if suffix in (".yaml", ".yml"):
        _check_yaml_tree(data, f"config file {path}")
    check_depth(data, f"config file {path}")
    return data


def _load_yaml(text: str, path: Path) -> Any:
    """``yaml.safe_load(text)``; a YAML error becomes one ConfigError line with its position."""
    import yaml  # PyYAML: imported when a YAML file is read, so `--help` does not pay for it

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML: {problem}{where}") from None


def _check_yaml_tree(data: Any, where: str) -> None:
    """Refuse what YAML can build and a config cannot hold: non-string keys, an alias that contains itself, and
    more than MAX_NODES values once aliases are expanded (each shared object is counted once per use, in time
    linear in the distinct objects)."""
    size: dict[int, int] = {}  # id -> expanded size of a finished container
    active: set[int] = set()  # containers on the current path: seeing one again is a cycle
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        children = list(node.values()) if isinstance(node, dict) else node
        if done:
            active.discard(id(node))
            total = 1 + sum(size.get(id(c), 1) for c in children)
            if total > MAX_NODES:
                raise ConfigError(f"{where}: more than {MAX_NODES:,} values (with its YAML aliases expanded)")
            size[id(node)] = total
            continue
        if id(node) in size:
            continue
        if id(node) in active:
            raise ConfigError(f"{where}: a YAML alias refers to a table or list that contains it")
        if isinstance(node, dict):
            for key in node:
                if not isinstance(key, str):
                    raise ConfigError(f"{where}: table key {_short(key)} is not a string")
        active.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in children if isinstance(c, (dict, list)))


_BARE_KEY = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _toml_key(key: str) -> str:
    return key if key and set(key) <= _BARE_KEY else _toml_string(key)


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, except that TOML also wants DEL escaped."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value: Any, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{key}: {value} cannot be written as a config value")
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v, f"{key}[{i}]") for i, v in enumerate(value)) + "]"
    if isinstance(value, Mapping):
        items = [f"{_toml_key(k)} = {_toml_value(v, f'{key}.{k}')}" for k, v in value.items() if v is not None]
        return "{" + ", ".join(items) + "}"
    raise ConfigError(f"{key}: {_short(value)} cannot be written as TOML")


def dumps_toml(data: Mapping[str, Any]) -> str:
    """Write a nested dict (a config's :func:`to_dict`) as TOML that ``tomllib`` reads back to the same dict.

    Sub-dicts become ``[section]`` tables; TOML has no null, so a ``None`` value is left out (as a comment line
    ``# key = null``): reading the file back gives the key's value from the layers under the file instead.
    """
    lines: list[str] = []

    def table(node: Mapping[str, Any], path: list[str]) -> None:
        scalars = [(k, v) for k, v in node.items() if not isinstance(v, Mapping)]
        tables = [(k, v) for k, v in node.items() if isinstance(v, Mapping)]
        if path:
            lines.extend(["", "[" + ".".join(_toml_key(p) for p in path) + "]"])
        for key, value in scalars:
            dotted = ".".join([*path, key])
            if value is None:
                lines.append(f"# {_toml_key(key)} = null")
            else:
                lines.append(f"{_toml_key(key)} = {_toml_value(value, dotted)}")
        for key, value in tables:
            table(value, [*path, key])

    table(data, [])
    return "\n".join(lines).lstrip("\n") + "\n"


@dataclass(frozen=True)
class Renamed:
    """A config key that moved: ``old`` (dotted) is read as ``new`` (one dotted key, or several when one old value
    became several keys), its value passed through ``convert`` first when given (which returns one value per new
    key: a tuple when there are several)."""

    old: str
    new: str | tuple[str, ...]
    convert: Callable[[Any], Any] | None = None

    @property
    def targets(self) -> tuple[str, ...]:
        """The new dotted key(s)."""
        return (self.new,) if isinstance(self.new, str) else tuple(self.new)

    def values(self, value: Any) -> tuple[Any, ...]:
        """The new keys' values for the old key's ``value``."""
        converted = self.convert(value) if self.convert is not None else value
        if len(self.targets) == 1:
            return (converted,)
        if not isinstance(converted, (list, tuple)) or len(converted) != len(self.targets):
            raise ConfigError(f"{self.old}: expected {len(self.targets)} values, got {_short(value)}")
        return tuple(converted)


def renamed_keys(cls: type) -> tuple[Renamed, ...]:
    """The renamed keys a run config class declares (its ``renamed_keys`` class attribute; none by default), and
    those its sections declare, under the section's name (``TrainConfig``'s ``tensorboard`` as ``train.tensorboard``
    in every run config that nests it as ``train``)."""
    own = tuple(getattr(cls, "renamed_keys", ()))
    if not dataclasses.is_dataclass(cls):
        return own
    nested = []
    hints = _type_hints(cls)
    for f in dataclasses.fields(cls):
        section = hints.get(f.name)
        if isinstance(section, type) and dataclasses.is_dataclass(section):
            for rename in renamed_keys(section):
                targets = tuple(f"{f.name}.{t}" for t in rename.targets)
                new = targets[0] if isinstance(rename.new, str) else targets
                nested.append(Renamed(f"{f.name}.{rename.old}", new, rename.convert))
    return own + tuple(nested)


@dataclass(frozen=True)
class Added:
    """A config key (dotted) added in a later version, whose default is not what runs saved before it did: a saved
    run's config without it was trained as if it held ``before``, and is read so (:func:`fill_added_keys`)."""

    key: str
    before: Any


def fill_added_keys(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data``, a whole config of ``cls`` as a run saved it (its ``config.json``), with every :class:`Added` key of
    ``cls``'s ``added_keys`` that it lacks set to the value the run had. Only for saved configs: a config file or
    ``--set`` that leaves a key out means today's default."""
    out = copy.deepcopy(dict(data))
    for added in getattr(cls, "added_keys", ()):
        *parents, last = added.key.split(".")
        node: Any = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and last not in node:
            node[last] = copy.deepcopy(added.before)
    return out


def _note(text: str) -> None:
    """A one-line note on stderr, from the main process only (every rank reads the same config)."""
    if os.environ.get("RANK", "0") in ("", "0"):
        print(f"note: {text}", file=sys.stderr, flush=True)


def migrate_keys(
    cls: type, data: Mapping[str, Any], where: str = "config", note: Callable[[str], None] | None = _note
) -> dict[str, Any]:
    """``data`` (one layer of a ``cls`` config: a file, ``--set``, a saved ``config.json``) with every old key of
    ``cls``'s :func:`renamed_keys` moved to its new name, and one ``note`` line naming them (``None``: silent).

    Where a layer holds both names, the old key's value wins (the note says what it replaced): a complete config
    of the earlier layout (a run's ``config.json``, an old ``--print-config``) holds the new key too, with the value
    the earlier code ignored or refused to take.
    """
    renames = renamed_keys(cls)
    out = copy.deepcopy(dict(data))
    if not renames:
        return out
    moved = []
    for rename in renames:
        replaced = []
        *parents, last = rename.old.split(".")
        node: Any = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or last not in node:
            continue
        value = node.pop(last)
        _prune(out, parents)
        for key, new_value in zip(rename.targets, rename.values(value)):
            *new_parents, new_last = key.split(".")
            target = out
            for part in new_parents:
                child = target.setdefault(part, {})
                if not isinstance(child, dict):
                    raise ConfigError(f"{where}: {'.'.join(new_parents)} is not a table")
                target = child
            if new_last in target and target[new_last] != new_value:
                replaced.append(f"{key} = {json.dumps(target[new_last], default=str)}")
            target[new_last] = new_value
        instead = f" (replacing {', '.join(replaced)})" if replaced else ""
        moved.append(f"{rename.old} -> {' + '.join(rename.targets)}{instead}")
    if moved and note is not None:
        note(f"{where} uses older config key names, read as: {'; '.join(moved)}")
    return out


def _prune(data: dict[str, Any], parents: list[str]) -> None:
    """Drop the tables along ``parents`` that a moved key left empty (innermost first)."""
    for depth in range(len(parents), 0, -1):
        node: Any = data
        for part in parents[: depth - 1]:
            node = node[part]
        if node.get(parents[depth - 1]) == {}:
            del node[parents[depth - 1]]


def load_run_config(cls: type[T], run_dir: str | Path) -> T:
    """The config a run was trained with (``RUN/config.json``, written by the Trainer) as a ``cls`` instance
    (keys of an earlier layout read under their new names, with a note; keys added since with the run's values)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.json)")
    return from_dict(cls, fill_added_keys(cls, migrate_keys(cls, load_file(path), str(path))))


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


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its comment in the dataclass's source: the comment at the end of the field's line, else the
    comment lines right above it (so a config class documents its options once, where they are defined; the
    generated CLI flags and the README tables read it). Empty when the source is not available."""
    import inspect
    import io
    import textwrap
    import tokenize

    try:
        source = textwrap.dedent(inspect.getsource(cls))
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (OSError, TypeError, tokenize.TokenError, IndentationError):
        return {}
    names = {f.name for f in dataclasses.fields(cls)}
    first_on_line: dict[int, tokenize.TokenInfo] = {}
    trailing: dict[int, str] = {}
    for tok in tokens:
        if tok.type in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            continue
        line = tok.start[0]
        if line not in first_on_line:
            first_on_line[line] = tok
        elif tok.type == tokenize.COMMENT:
            trailing[line] = tok.string
    docs = {}
    for i, tok in enumerate(tokens[:-1]):
        if not (tok.type == tokenize.NAME and tok.string in names and first_on_line.get(tok.start[0]) is tok):
            continue
        if tokens[i + 1].string != ":" or tok.start[1] != 4:
            continue
        line = tok.start[0]
        text = _comment_text(trailing.get(line, ""))
        if not text:
            above, row = [], line - 1
            while row in first_on_line and first_on_line[row].type == tokenize.COMMENT:
                above.insert(0, _comment_text(first_on_line[row].string))
                row -= 1
            text = " ".join(t for t in above if t)
        if text:
            docs[tok.string] = text
    return docs


def _comment_text(comment: str) -> str:
    text = comment.lstrip("#").strip()
    return "" if text.startswith(("fmt:", "noqa", "type:")) else text


def _field_path(cls: type, key: str) -> tuple[type, str]:
    """The dataclass that holds dotted ``key`` of config ``cls``, and the field's name in it."""
    *parents, name = key.split(".")
    for part in parents:
        hint = _type_hints(cls).get(part)
        if hint is None or not dataclasses.is_dataclass(hint):
            raise ConfigError(f"{cls.__name__} has no section {part!r} (in {key})")
        cls = hint
    if name not in {f.name for f in dataclasses.fields(cls)}:
        raise _unknown_key(cls, name, ".".join(parents) + "." if parents else "")
    return cls, name


def field_doc(cls: type, key: str) -> str:
    """The comment that documents dotted ``key`` of config ``cls`` (:func:`field_docs`; "" when none)."""
    holder, name = _field_path(cls, key)
    return field_docs(holder).get(name, "")


def field_type(cls: type, key: str) -> Any:
    """The type annotation of dotted ``key`` of config ``cls`` (resolved)."""
    holder, name = _field_path(cls, key)
    return _type_hints(holder)[name]


def default_value(cls: type, key: str) -> Any:
    """The default of dotted ``key`` in ``cls()`` (the run config's own defaults, e.g. its TrainConfig's)."""
    node: Any = to_dict(cls())
    for part in key.split("."):
        node = node[part]
    return node


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
    """Build dataclass ``cls`` from a nested dict, checking keys and types (a top-level ``data`` of an earlier
    layout has its renamed keys moved first, :func:`migrate_keys`)."""
    if not prefix and renamed_keys(cls):
        data = migrate_keys(cls, data)
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


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
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
    run: Mapping[str, Any] | None = None,
) -> T:
    """Layer defaults < ``base`` (``key=value``: a preset) < ``run`` (a resumed run's own config) < ``config_file``
    < ``overrides`` (``key=value``) < ``flags`` (dotted keys, None = unset). Each layer's renamed keys are read
    under their new names."""
    data = to_dict(cls())
    layers: list[tuple[dict[str, Any], str]] = [(apply_overrides({}, base), "preset")]
    if run:
        layers.append((dict(run), "the resumed run's config.json"))
    if config_file is not None:
        layers.append((load_file(config_file), str(config_file)))
    for text in overrides:  # one by one: two --set of one key are not "both names set"
        layers.append((apply_overrides({}, [text]), f"--set {text.split('=', 1)[0].strip()}"))
    for key, value in (flags or {}).items():
        if value is not None:
            layers.append((_nest(key.split("."), value), "flags"))
    for layer, where in layers:
        _merge(data, migrate_keys(cls, layer, where))
    return from_dict(cls, data)


def _nest(path: list[str], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {path[-1]: value}
    for part in reversed(path[:-1]):
        out = {part: out}
    return out
