"""One static page for the demos: ``runs/demo/index.html`` with every package's pictures and figures.

Written by ``gencore demo-all`` after its steps ran (and by ``gencore demo-report`` alone). For each package with a
demo: the steps that ran (command and seconds), the PNG files among its :attr:`~gencore.registry.PackageSpec.
demo_outputs` (a folder shows its newest PNGs), the numbers of its JSON outputs as a table, and the last logged
values of each run directory's ``metrics.csv`` with a link to the model card of each model folder it exported
(``model/**/README.md``: how it was trained and its metrics). Images are linked by relative paths, so the folder
``runs/`` can be moved or served as it is; no script, no network. Standard library only.
"""

from __future__ import annotations

import csv
import html
import json
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gencore.fileio import atomic_write_text
from gencore.registry import PackageSpec

__all__ = ["REPORT", "write_report", "package_section"]

#: Where ``gencore demo-all`` writes the page (relative to the working directory).
REPORT = Path("runs/demo/index.html")
NEWEST = 3  # PNGs shown of a folder output
MAX_NUMBERS = 24  # numbers shown per JSON file
#: Pictures up to this size (pixels) fit their box unscaled: a file output's (max-width 100% of 72rem, max-height
#: 36rem), and a folder's, whose newest pictures stand side by side as a progression (22rem by 18rem).
FITS = (1024, 576)
FITS_SERIES = (352, 288)
SMALL = 192  # a picture smaller than this (pixels) is drawn larger, by a whole factor (a 64-pixel sample is tiny)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.5rem; border-bottom: 1px solid #ccc; }
figure { display: inline-block; margin: 0.5rem 1rem 0.5rem 0; vertical-align: top; max-width: 100%; }
img { width: auto; height: auto; max-width: 100%; max-height: 36rem; border: 1px solid #ddd; }
figure.series img { max-width: 22rem; max-height: 18rem; }
img.pixels { image-rendering: pixelated; }
figcaption, .muted { color: #666; font-size: 0.85rem; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
td, th { border: 1px solid #ddd; padding: 0.2rem 0.6rem; text-align: left; }
code { background: #f4f4f4; padding: 0.05rem 0.3rem; }
td.secs { white-space: nowrap; }
code.step { background: none; padding: 0; line-height: 1.5; } code.step span { white-space: nowrap; }
"""


def _pngs(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if path.suffix.lower() == ".png" else []
    if path.is_dir():
        found = sorted(path.rglob("*.png"), key=lambda p: (p.stat().st_mtime, p.as_posix()))
        return found[-NEWEST:]
    return []


def _png_size(path: Path) -> tuple[int, int] | None:
    """Width and height of a PNG file from its header (None if it is not a readable PNG)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(24)
    except OSError:
        return None
    if len(head) < 24 or not head.startswith(b"\x89PNG\r\n\x1a\n") or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _figure(png: Path, base: Path, series: bool = False) -> str:
    """A picture with its path as caption. Its size in the tag reserves its place while the page loads; one that
    fits the box is drawn with hard pixels, a small one enlarged by a whole factor (sample grids of 16-pixel
    images stay sharp, also on high-density screens), a larger one scaled down smoothly (nearest-neighbour
    scaling down makes plot text illegible)."""
    rel = Path(os.path.relpath(png, base)).as_posix()
    size = _png_size(png)
    attrs = ""
    if size is not None:
        box = FITS_SERIES if series else FITS
        fits = size[0] <= box[0] and size[1] <= box[1]
        attrs = f' width="{size[0]}" height="{size[1]}"' + (' class="pixels"' if fits else "")
        zoom = SMALL // max(size)
        if zoom > 1:
            attrs += f' style="width: {size[0] * zoom}px"'
    figure = '<figure class="series">' if series else "<figure>"
    return (f'{figure}<img src="{html.escape(rel)}"{attrs} alt="{html.escape(png.as_posix())}">'
            f"<figcaption>{html.escape(png.as_posix())}</figcaption></figure>")  # fmt: skip


def _step(words: Sequence[str]) -> str:
    """A command line whose lines break between arguments only (not after the hyphens of ``--max-steps``)."""
    return '<code class="step">' + " ".join(f"<span>{html.escape(word)}</span>" for word in words) + "</code>"


def _numbers(data: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Scalar values of a JSON document by dotted key (numbers, booleans and short strings; lists left out)."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            yield from _numbers(value, f"{prefix}{key}.")
    elif isinstance(data, (int, float)) or (isinstance(data, str) and len(data) <= 80):
        yield prefix.rstrip("."), data


def _json_table(path: Path) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f'<p class="muted">{html.escape(str(path))}: not readable</p>'
    rows = list(_numbers(data))[:MAX_NUMBERS]
    cells = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<p><code>{html.escape(path.as_posix())}</code></p><table>{cells}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _last_metrics(run_dir: Path) -> str:
    """The last logged row of ``run_dir/metrics.csv`` and the last evaluation values, as a table."""
    path = run_dir / "metrics.csv"
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, csv.Error):
        return ""
    if not rows:
        return ""
    last: dict[str, str] = {}
    for row in rows:  # evaluation columns are empty on most rows: keep each column's latest value
        last.update({k: v for k, v in row.items() if k and v not in (None, "")})
    cells = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(_fmt(_float(v)))}</td></tr>"
                    for k, v in last.items())  # fmt: skip
    return f"<p><code>{html.escape(path.as_posix())}</code> (last values)</p><table>{cells}</table>"


def _model_cards(run_dir: Path, base: Path) -> str:
    """Links to the model cards of the model folders ``run_dir`` exported (those with a ``model_info.json``)."""
    links = []
    for info_file in sorted((run_dir / "model").rglob("model_info.json")):
        try:
            info = json.loads(info_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        card = info_file.with_name("README.md")
        if not card.is_file() or not isinstance(info, dict):
            continue
        rel = Path(os.path.relpath(card, base)).as_posix()
        name = str(info.get("class", "")).rpartition(":")[2] or "model"
        params = info.get("parameters")
        size = f", {params:,} parameters" if isinstance(params, int) else ""
        links.append(f'<li><a href="{html.escape(rel)}">{html.escape(card.as_posix())}</a> '
                     f"({html.escape(name)}{size})</li>")  # fmt: skip
    return f"<p>Model cards:</p><ul>{''.join(links)}</ul>" if links else ""


def _float(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _run_dirs(spec: PackageSpec) -> list[Path]:
    """The run directories the demo steps name (``--output-dir DIR``, or a ``runs/...`` argument holding a
    ``metrics.csv``), in order, once each."""
    found: list[Path] = []
    for step in spec.demo:
        for i, arg in enumerate(step):
            candidate = None
            if arg == "--output-dir" and i + 1 < len(step):
                candidate = Path(step[i + 1])
            elif arg.startswith("runs/") and (Path(arg) / "metrics.csv").is_file():
                candidate = Path(arg)
            if candidate is not None and candidate not in found and (candidate / "metrics.csv").is_file():
                found.append(candidate)
    return found


def package_section(spec: PackageSpec, timings: Mapping[str, float], base: Path) -> str:
    """The HTML of one package: its steps, pictures, JSON figures and last logged values (paths relative to
    ``base``, the report's folder)."""
    parts = [f'<h2 id="{html.escape(spec.name)}">{html.escape(spec.name)}</h2>', "<table>"]
    for step in spec.demo:
        shown = f"{spec.name} {' '.join(step)}"
        took = timings.get(shown)
        seconds = "" if took is None else f'<td class="secs">{took:.0f} s</td>'
        parts.append(f"<tr><td>{_step((spec.name, *step))}</td>{seconds}</tr>")
    parts.append("</table>")
    for output in spec.demo_outputs:
        path = Path(output)
        parts.extend(_figure(png, base, series=path.is_dir()) for png in _pngs(path))
        if path.is_file() and path.suffix.lower() == ".json":
            parts.append(_json_table(path))
        if not path.exists():
            parts.append(f'<p class="muted">{html.escape(output)}: not written</p>')
    for run in _run_dirs(spec):
        parts.extend((_last_metrics(run), _model_cards(run, base)))
    return "\n".join(p for p in parts if p)


def write_report(specs: Sequence[PackageSpec], timings: Mapping[str, float], path: str | Path = REPORT) -> Path:
    """Write the demo page for ``specs`` at ``path`` (atomically) and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    total = sum(timings.values())
    if timings:
        made = (f"{len(timings)} steps, {total / 60:.1f} min of this run (steps resumed from an earlier run take "
                "seconds). Made by <code>gencore demo-all</code>.")  # fmt: skip
    else:
        made = "Written by <code>gencore demo-report</code> from the runs under <code>runs/</code> (no step was run)."
    index = " · ".join(f'<a href="#{html.escape(s.name)}">{html.escape(s.name)}</a>' for s in specs)
    body = "\n".join(package_section(spec, timings, path.parent) for spec in specs)
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>gencore demos</title>'
        f"<style>{_STYLE}</style></head><body>\n<h1>Demos of the generative-model packages</h1>\n"
        f'<p class="muted">{made}</p>\n<p>{index}</p>\n{body}\n</body></html>\n'
    )
    atomic_write_text(path, page)
    return path
