"""The demo page (gencore.demo_report) in a real browser: headless Chromium (Debian's package ``chromium``) driven
by playwright loads ``runs/demo/index.html`` as a file:// URL, as a user opens it, with no server.

The page is written for every registered package's demo (their real commands; outputs that are not there show as
"not written"), with gencore's own demo really trained for a few steps, plus a toy entry for what the gencore demo
does not write (a JSON table, a very wide picture). Missing images would show here: Chromium reports them as a
failed request and a console error, and their naturalWidth stays 0 (checked on file:// URLs).

Without Chromium (or playwright) the test fails, saying how to install it (``.ci/run`` installs Chromium as
root); it skips only when asked to with ``GENCORE_SKIP_BROWSER=1``, on a machine where Chromium cannot be had, so
the check never vanishes silently.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image, ImageStat

from gencore.cli import main
from gencore.demo_report import write_report
from gencore.demos import demo_specs
from gencore.package import SPEC as GENCORE
from gencore.registry import FaultJob, PackageSpec, TrainCommand

#: The flags Chromium needs in a container without a display, a GPU or network, run as root.
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
VIEWPORT = {"width": 1280, "height": 900}
IMAGES = (
    "Array.from(document.images).map(i => ({src: i.getAttribute('src'), complete: i.complete,"
    " natural: i.naturalWidth, shown: i.getBoundingClientRect().width, pixels: i.classList.contains('pixels')}))"
)
LAYOUT = (
    "({scroll: document.documentElement.scrollWidth, inner: window.innerWidth,"
    " sections: document.querySelectorAll('h2').length})"
)


def _require(what: str, how: str) -> None:
    """Fail without ``what``, saying ``how`` to install it; skip only when GENCORE_SKIP_BROWSER=1 asks for it."""
    message = f"{what} is missing for the browser test of the demo page: {how}"
    if os.environ.get("GENCORE_SKIP_BROWSER") == "1":
        pytest.skip(f"{message} (skipped: GENCORE_SKIP_BROWSER=1)")
    pytest.fail(f"{message}; .ci/run installs Chromium as root, GENCORE_SKIP_BROWSER=1 skips this test")


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        _require("chromium", "install Debian's package: apt-get install chromium")
    return found


def _visit(browser: Any, page_path: Path, shot: Path | None = None) -> tuple[list[str], list[dict], dict]:
    """Open ``page_path`` as a file:// URL; returns what went wrong (console errors, page errors, failed
    requests), the page's images and its layout, and saves a full-page screenshot at ``shot``."""
    problems: list[str] = []
    page = browser.new_page()
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url} ({r.failure})"))
    response = page.goto(page_path.resolve().as_uri(), wait_until="load")  # load: after every <img> loaded or failed
    assert response is not None and response.ok
    images, layout = page.evaluate(IMAGES), page.evaluate(LAYOUT)
    if shot is not None:
        page.screenshot(path=str(shot), full_page=True)
    page.close()
    return problems, images, layout


def _toy_spec() -> PackageSpec:
    """A package whose demo wrote a JSON file of figures, a very wide and a tiny picture (the gencore demo writes
    none of them)."""
    return PackageSpec(
        name="toy", import_name="toy", cli="toy.cli:main",
        train_commands=(TrainCommand("train", config="toy.config:Config", module="toy.train", presets={"tiny": ()}),),
        fault_job=FaultJob("train", steps=2),
        demo=(("train", "--output-dir", "runs/toy-demo"),),
        demo_outputs=("runs/toy-demo/wide.png", "runs/toy-demo/small.png", "runs/toy-demo/result.json"),
    )  # fmt: skip


def _runs() -> dict[str, float]:
    """Train gencore's demo for a few steps where its registry entry says (runs/gencore-demo), write the toy
    package's outputs; returns the timings the page shows."""
    steps = ["--max-steps", "8", "--set", "train.sample_every=4", "--set", "train.checkpoint_every=8"]
    tiny = [arg for key in GENCORE.preset("tiny") for arg in ("--set", key)]
    result = CliRunner().invoke(main, ["demo", "--output-dir", "runs/gencore-demo", *tiny, *steps])
    assert result.exit_code == 0, result.output
    toy = Path("runs/toy-demo")
    toy.mkdir(parents=True)
    Image.linear_gradient("L").resize((4000, 64)).save(toy / "wide.png")
    Image.radial_gradient("L").resize((16, 16)).save(toy / "small.png")
    (toy / "result.json").write_text(json.dumps({"fd": 12.3456, "nested": {"kid": 0.01}, "note": "x" * 80}))
    return {
        "gencore demo --output-dir runs/gencore-demo --resume auto": 3.0,
        "toy train --output-dir runs/toy-demo": 1.0,
    }


def test_the_demo_page_loads_in_chromium_with_every_picture_and_no_error(tmp_path, monkeypatch):
    chromium = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require("playwright", "pip install -r requirements-dev.txt (no `playwright install`: it uses Chromium)")
    monkeypatch.chdir(tmp_path)
    timings = _runs()
    specs = [*demo_specs(), _toy_spec()]
    assert any(spec.name == "gencore" for spec in specs)
    page_path = write_report(specs, timings)
    broken = tmp_path / "broken.html"  # the control: what a missing picture looks like to these checks
    broken.write_text('<!doctype html><title>x</title><img src="runs/toy-demo/gone.png">', encoding="utf-8")
    shot = tmp_path / "demo-report.png"

    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=chromium, headless=True, args=FLAGS, viewport=VIEWPORT
        )
        try:
            seen_broken = _visit(browser, broken)
            problems, images, layout = _visit(browser, page_path, shot)
        finally:
            browser.close()

    assert any("gone.png" in problem for problem in seen_broken[0]) and seen_broken[1][0]["natural"] == 0
    assert problems == []
    srcs = [image["src"] for image in images]
    assert "../gencore-demo/losses.png" in srcs and "../toy-demo/wide.png" in srcs
    assert any(src.startswith("../gencore-demo/samples/") for src in srcs)
    for image in images:  # every picture resolved and is shown, none wider than the window
        assert image["complete"] and image["natural"] > 0, image
        assert 0 < image["shown"] <= VIEWPORT["width"], image
        if image["pixels"]:  # drawn with hard pixels: only where it is not scaled down (plots stay legible)
            assert image["shown"] - 2 > image["natural"] - 1, image  # 2: its border
    pixels = {image["src"]: image["pixels"] for image in images}
    assert pixels["../gencore-demo/losses.png"] and not pixels["../toy-demo/wide.png"]
    assert [image["shown"] for image in images if image["src"] == "../toy-demo/small.png"] == [16 * 12 + 2]  # enlarged
    assert layout["scroll"] <= layout["inner"], layout  # nothing overflows sideways (long commands, wide pictures)
    assert layout["sections"] == len(specs)

    with Image.open(shot) as picture:  # the screenshot shows something: not one flat colour, not mostly white
        assert picture.width == VIEWPORT["width"] and picture.height >= VIEWPORT["height"]
        grey = picture.convert("L")
        assert ImageStat.Stat(grey).stddev[0] > 10
        dark = grey.point(lambda v: 255 if v < 200 else 0).histogram()[255]
        assert dark > 0.005 * grey.width * grey.height
