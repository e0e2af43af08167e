"""Paths and text that come from data files: output paths that stay inside their root, paths listed in index
files, and text files read the way users save them.

Writes. A value read from a data file (a writer or class name, a file name, a manifest entry) never becomes a
path outside the output root. :func:`safe_name` checks a value that must be one file or folder name,
:func:`safe_join` a (possibly nested) relative path below a root, symbolic links included. Both refuse with a
:class:`~gencore.errors.DataError` that names the value and the reason instead of rewriting the value: in these
layouts the name *is* the label (a class folder, a writer folder, a CAPTCHA text), so a silently changed name
would be a silently changed label.

Reads. :func:`listed_path` turns an entry of an index file into the path to read: a relative entry is relative
to the index file's own folder (how the original data sets and ``write_index`` write them), an absolute entry is
taken as it is, and ``..`` is allowed: images often lie beside or above the index (``../images/a.png``), and
``write_index`` itself writes absolute paths for images outside the index's folder. Reading cannot damage
anything, and a file that is not an image is refused by the image loader with its name. A NUL byte is refused.

Text. :func:`read_text` / :func:`read_text_lines` read UTF-8 with or without a byte-order mark (Notepad, Excel)
and with LF, CRLF or CR line ends; anything else is a one-line DataError naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePath

from gencore.errors import DataError

__all__ = ["safe_name", "safe_join", "listed_path", "read_text", "read_text_lines"]

_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _name_problem(text: str) -> str | None:
    """Why ``text`` cannot be one file or folder name, or None."""
    if not text.strip():
        return "it is empty"
    if "\x00" in text:
        return "it contains a NUL byte"
    if _CONTROL.search(text):
        return "it contains a control character (tab, newline ...)"
    if "/" in text or "\\" in text:
        return "it contains a path separator"
    if text in (".", ".."):
        return f"{text!r} is not a name"
    if _DRIVE.match(text):
        return "it starts with a drive letter"
    if len(text.encode("utf-8", "surrogateescape")) > 255:
        return "it is longer than 255 bytes"
    return None


def safe_name(text: str, what: str = "name", where: str = "") -> str:
    """``text`` when it can be one file or folder name on every system, else DataError.

    Refused: empty names, ``.`` and ``..``, path separators (``/`` and ``\\``), NUL and other control characters,
    a leading drive letter (``C:``) and names longer than 255 bytes. ``what`` (``writer``, ``class``) and
    ``where`` (``index.txt:3: ``) go into the message.
    """
    problem = _name_problem(str(text))
    if problem is not None:
        raise DataError(f"{where}{what} {str(text)!r} cannot be used as a file or folder name: {problem}")
    return str(text)


def _parts(value: str | PurePath, what: str, root: Path) -> list[str]:
    text = value.as_posix() if isinstance(value, PurePath) else str(value)
    why = None
    if text == "":
        why = "it is empty"
    elif "\x00" in text:
        why = "it contains a NUL byte"
    elif text.startswith(("/", "\\")) or _DRIVE.match(text):
        why = "it is an absolute path"
    if why is not None:
        raise DataError(f"{what} {text!r} cannot be written under {root}: {why}")
    return [p for p in re.split(r"[/\\]", text) if p not in ("", ".")]


def safe_join(root: str | Path, *parts: str | PurePath, what: str = "path") -> Path:
    """``root / part / ...`` for parts that come from data, refused (DataError) unless the result stays inside
    ``root``: absolute parts, drive letters, NUL bytes, ``..`` that climbs above ``root`` and symbolic links
    (already on disk) that lead out of it are refused; ``a/../b`` is fine and becomes ``b``.

    ``/`` and ``\\`` both separate parts (a Windows path in a data file means the same folders everywhere).
    The result is ``root`` joined with the normalised parts (``root`` itself is not resolved).
    """
    root = Path(root)
    names: list[str] = []
    for part in parts:
        for name in _parts(part, what, root):
            if name == "..":
                if not names:
                    raise DataError(f"{what} {str(part)!r} cannot be written under {root}: it climbs out with '..'")
                names.pop()
            else:
                names.append(name)
    path = root.joinpath(*names)
    real_root = root.resolve()
    if not path.resolve().is_relative_to(real_root):
        raise DataError(
            f"{what} {'/'.join(str(p) for p in parts)!r} cannot be written under {root}: a symbolic link in "
            f"{path} leads outside it"
        )
    return path


def listed_path(base: str | Path, entry: str, where: str = "") -> Path:
    """The file that an index-file entry names, for reading (see the module docstring for the rule).

    Relative entries are relative to ``base`` (the index file's folder); absolute entries are kept. A Windows
    entry (``imgs\\a.png``) is read with ``/`` when no file of the literal name exists. NUL bytes are refused.
    """
    if "\x00" in entry:
        raise DataError(f"{where}path {entry!r} contains a NUL byte")
    path = Path(entry)
    full = path if path.is_absolute() else Path(base) / path
    if "\\" in entry and not full.exists():
        alt = Path(entry.replace("\\", "/"))
        full = alt if alt.is_absolute() else Path(base) / alt
    return full


def read_text(path: str | Path, what: str = "text file") -> str:
    """The text of ``path``: UTF-8 with or without a byte-order mark; CRLF and CR line ends become LF.

    A missing file, a folder and undecodable bytes raise DataError naming the file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not a {what}") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not a UTF-8 text file (byte {exc.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text_lines(path: str | Path, what: str = "text file") -> list[str]:
    """The lines of ``path`` (see :func:`read_text`) without their line ends.

    Only LF, CRLF and CR end a line: unlike ``str.splitlines`` a form feed or U+2028 inside a value stays there.
    """
    text = read_text(path, what)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines
