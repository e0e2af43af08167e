"""The demo page (gencore.demo_report): every picture it shows resolves, relative to the page, its figures are
the files' own, and nothing it needs is outside runs/."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from gencore.demo_report import write_report
from gencore.registry import FaultJob, PackageSpec, TrainCommand


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")
        if tag == "a":
            self.links.append(dict(attrs)["href"] or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _spec() -> PackageSpec:
    return PackageSpec(
        name="toy", import_name="toy", cli="toy.cli:main",
        train_commands=(TrainCommand("train", config="toy.config:Config", module="toy.train", presets={"tiny": ()}),),
        fault_job=FaultJob("train", steps=2),
        demo=(("train", "--output-dir", "runs/toy-demo"), ("sample", "runs/toy-demo", "-o", "runs/toy-demo/s.png")),
        demo_outputs=("runs/toy-demo/samples", "runs/toy-demo/s.png", "runs/toy-demo/result.json", "runs/toy-demo/no"),
    )  # fmt: skip


def _runs(root: Path) -> None:
    run = root / "runs" / "toy-demo"
    (run / "samples").mkdir(parents=True)
    for i in range(5):
        Image.new("L", (8, 8), 40 * i).save(run / "samples" / f"step_{i}.png")
    Image.new("RGB", (8, 8), "red").save(run / "s.png")
    (run / "result.json").write_text(json.dumps({"fd": 12.3456, "nested": {"kid": 0.01}, "list": [1, 2]}))
    (run / "metrics.csv").write_text("step,loss,eval/fd\n1,2.0,\n2,1.5,9.5\n3,1.25,\n")
    for name, info in (("generator", '{"class": "toy.model:Gen", "parameters": 1234}'), ("broken", "{oops")):
        (run / "model" / name).mkdir(parents=True)
        (run / "model" / name / "model_info.json").write_text(info)
        (run / "model" / name / "README.md").write_text("# Gen\n")


def test_the_page_shows_pictures_figures_and_timings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _runs(tmp_path)
    spec = _spec()
    timings = {"toy train --output-dir runs/toy-demo": 12.0}
    page_path = write_report([spec], timings)
    assert page_path == Path("runs/demo/index.html")
    page = _Page()
    page.feed(page_path.read_text(encoding="utf-8"))
    text = " ".join(page.text)
    assert "script" not in page.tags  # static: nothing runs, nothing is fetched
    assert len(page.images) == 4  # the newest 3 of samples/, then s.png
    for src in page.images:
        assert not src.startswith(("/", "http")) and (page_path.parent / src).resolve().is_file(), src
    assert page.images[:3] == [f"../toy-demo/samples/step_{i}.png" for i in (2, 3, 4)]
    assert "12.35" in text and "nested.kid" in text and "0.01" in text  # the JSON's numbers
    assert "9.5" in text and "1.25" in text  # the last evaluation and the last logged loss
    assert "runs/toy-demo/no: not written" in text and "12 s" in text
    cards = [href for href in page.links if href.endswith("README.md")]  # the model card, not the broken folder's
    assert cards == ["../toy-demo/model/generator/README.md"] and (page_path.parent / cards[0]).is_file()
    assert "Gen, 1,234 parameters" in text.replace("( ", "(")


def test_demo_report_command_writes_the_page_from_existing_runs(tmp_path, monkeypatch):
    from gencore.cli import main

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo-report", "--only", "gencore", "-o", "page.html"])
    assert result.exit_code == 0, result.output
    assert "not written" in Path("page.html").read_text(encoding="utf-8")  # no demo has run here
