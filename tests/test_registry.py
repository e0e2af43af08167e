"""The package registry (gencore.registry) is the one list of packages: every folder under packages/ is in it and in
the shared files that cannot read it, every registered spec resolves (CLI, training commands, config classes,
presets) and its presets build valid configs, the specs stay light to import, a broken registration is one clear
line, and the hatch hook that every package copies is the same file everywhere.

The cross-package tests (tests/faults: fault jobs, kill/resume, determinism, pickles, signals; tests/test_install.py;
tests/test_gpu_check.py) iterate the registry, so what this file checks is what makes a new package part of them.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from pathlib import Path

import click
import pytest

from gencore import registry
from gencore.config import load_file
from gencore.registry import GROUP, FaultJob, PackageSpec, Ref, RegistryError, TrainCommand, packages

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {path.parent.name: load_file(path) for path in sorted(ROOT.glob("packages/*/pyproject.toml"))}
SPECS = packages()
HEAVY = ["torch", "accelerate", "safetensors"]


def _import_name(folder: str) -> str:
    (name,) = [p.name for p in sorted((ROOT / "packages" / folder / "src").iterdir()) if (p / "__init__.py").is_file()]
    return name


# --- every folder is a registered package ------------------------------------------------------------------------


@pytest.mark.parametrize("folder", list(FOLDERS))
def test_every_package_folder_is_registered(folder: str) -> None:
    project = FOLDERS[folder]["project"]
    name, import_name = project["name"], _import_name(folder)
    declared = project.get("entry-points", {}).get(GROUP, {})
    assert declared == {name: f"{import_name}.package:SPEC"}, (
        f'packages/{folder}/pyproject.toml must declare [project.entry-points."{GROUP}"] '
        f'{name} = "{import_name}.package:SPEC" (CONTRIBUTING.md, "Add a package")'
    )
    assert name in SPECS, f"{name} is not registered: re-install it (pip install --no-deps -e packages/{folder})"
    spec = SPECS[name]
    assert spec.import_name == import_name
    assert spec is importlib.import_module(f"{import_name}.package").SPEC  # the installed entry point is this tree's


@pytest.mark.parametrize("folder", list(FOLDERS))
def test_every_package_folder_is_in_the_files_that_cannot_read_the_registry(folder: str) -> None:
    """requirements-dev.txt installs it (an editable install for a model package) and ruff knows its import."""
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements-dev.txt").read_text().splitlines()]
    wanted = "./packages/core[tensorboard]" if folder == "core" else f"-e ./packages/{folder}"
    assert wanted in lines, f"requirements-dev.txt must list {wanted}"
    first_party = load_file(ROOT / "pyproject.toml")["tool"]["ruff"]["lint"]["isort"]["known-first-party"]
    assert _import_name(folder) in first_party, "the root pyproject.toml's ruff known-first-party must list it"


# --- every spec resolves -----------------------------------------------------------------------------------------


def _options(command: click.Command) -> set[str]:
    return {opt for param in command.params for opt in getattr(param, "opts", [])}


def check_spec(spec: PackageSpec) -> None:
    """Everything a spec names resolves: its click group and training commands (with the shared options), the
    modules to run with -m, the config classes (TrainConfig under ``train``), and every preset builds a valid config."""
    from gencore.train import TrainConfig

    cli = spec.load_cli()
    assert isinstance(cli, click.Group), f"{spec.cli} is not a click group"
    for command in spec.train_commands:
        assert command.name in cli.commands, f"{spec.cli} has no command {command.name!r}"
        options = _options(cli.commands[command.name])
        assert {"--config", "--set", "--output-dir", "--max-steps"} <= options, "use gencore.cli.training_options"
        if command.resume == "option":
            assert "--resume" in options
        else:  # START_EPOCH: the first argument
            assert isinstance(cli.commands[command.name].params[0], click.Argument)
        if command.trains_on is not None:
            assert command.trains_on[1] in options
        assert importlib.util.find_spec(command.module) is not None, f"no module {command.module} to run with -m"
        cls = command.config_class()
        assert isinstance(cls().train, TrainConfig), f"{command.config}: the shared TrainConfig belongs under `train`"
        assert "tiny" in command.presets
        for preset in command.presets:  # tiny, bench and the package's own (original ...): valid configs
            config = command.build(preset)
            assert isinstance(config, cls) and isinstance(config.train, TrainConfig), preset
        tiny = command.build("tiny", "train.max_steps=2")
        assert tiny.train.max_steps == 2
        if command.cpu_preset is not None:  # --preset auto: the tests' tiny run must not depend on the machine
            from gencore.config import build_config

            for preset in command.presets:
                under = build_config(cls, overrides=command.preset("tiny"), base=command.preset(preset))
                assert under == command.build("tiny"), f"tiny leaves a key of preset {preset!r} to the preset"
    assert spec.fault_job.command in cli.commands


@pytest.mark.parametrize("name", list(SPECS))
def test_spec_resolves_and_its_presets_build_valid_configs(name: str) -> None:
    check_spec(SPECS[name])


def test_the_registry_is_sorted_and_holds_the_core_demo() -> None:
    assert list(SPECS) == sorted(SPECS)
    assert SPECS["gencore"].command().name == "demo"
    assert {spec.label(c) for spec in SPECS.values() for c in spec.train_commands} >= {"vqgan-negatives-prior"}


# --- light to import ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SPECS))
def test_package_module_imports_only_the_registry(name: str) -> None:
    """``<import_name>/package.py`` is data: at the top it imports ``gencore.registry`` and nothing else."""
    path = Path(importlib.util.find_spec(f"{SPECS[name].import_name}.package").origin)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= {"__future__", "gencore.registry"}, f"{path} imports {sorted(imported)}"


def test_reading_the_registry_loads_no_torch() -> None:
    """Reading the registry imports the specs only (no torch), once the packages' own ``__init__`` are light."""
    names = sorted({spec.import_name for spec in SPECS.values()})
    probe = f"import importlib, json, sys\nfor n in {names!r}: importlib.import_module(n)\n"
    loaded = f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    before = subprocess.run([sys.executable, "-c", probe + loaded], capture_output=True, text=True, timeout=120)
    assert before.returncode == 0, before.stderr
    assert not json.loads(before.stdout), f"importing the packages themselves loads {before.stdout.strip()}"
    read = "from gencore.registry import packages\nspecs = packages()\n"
    done = subprocess.run([sys.executable, "-c", probe + read + loaded], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


# --- broken registrations ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "value", "message"),
    [
        ("ghost", "no_such_module_here.package:SPEC", "does not load: ModuleNotFoundError"),
        ("ghost", "gencore.package:NO_SUCH_NAME", "does not load: AttributeError"),
        ("ghost", "gencore.registry:GROUP", "is a str, not a gencore.registry.PackageSpec"),
        ("ghost", "gencore.package:SPEC", "names package 'gencore'"),
    ],
    ids=["missing-module", "missing-attr", "wrong-type", "wrong-name"],
)
def test_a_broken_entry_point_is_one_line_naming_it(monkeypatch, entry: str, value: str, message: str) -> None:
    broken = importlib.metadata.EntryPoint(name=entry, value=value, group=GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: [broken])
    with pytest.raises(RegistryError) as caught:
        packages()
    text = str(caught.value)
    assert "\n" not in text and f"entry point {entry} = {value!r}" in text and message in text, text


def test_an_unregistered_name_says_how_to_register_it() -> None:
    with pytest.raises(RegistryError, match="'no-such-package' is not registered in gencore.packages"):
        registry.get("no-such-package")


def test_specs_are_checked_when_they_are_made() -> None:
    tiny = {"tiny": ("train.max_steps=1",)}
    with pytest.raises(RegistryError, match="no 'tiny' preset"):
        TrainCommand("train", "m:C", "m.train", presets={})
    with pytest.raises(RegistryError, match="'key=value' strings"):
        TrainCommand("train", "m:C", "m.train", presets={"tiny": "train.max_steps=1"})
    with pytest.raises(RegistryError, match="resume must be"):
        TrainCommand("train", "m:C", "m.train", presets=tiny, resume="--resume")  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="cpu_preset 'small' is not one of its presets"):
        TrainCommand("train", "m:C", "m.train", presets=tiny, cpu_preset="small")
    train = TrainCommand("train", "m:C", "m.train", presets=tiny)
    with pytest.raises(RegistryError, match="fault job command 'fit'"):
        PackageSpec("toy", "toy", "toy.cli:main", (train,), FaultJob("fit", steps=2))
    with pytest.raises(RegistryError, match="given once each"):
        PackageSpec("toy", "toy", "toy.cli:main", (train, train), FaultJob("train", steps=2))
    with pytest.raises(RegistryError, match="steps and epochs must be positive"):
        FaultJob("train", steps=0)
    stage = TrainCommand("stage-2", "m:C", "m.train", presets=tiny, trains_on=("stage-1", "--first"))
    with pytest.raises(RegistryError, match="trains on unknown 'stage-1'"):
        PackageSpec("toy", "toy", "toy.cli:main", (train, stage), FaultJob("train", steps=2))
    spec = PackageSpec("toy", "toy", "toy.cli:main", [train], FaultJob("train", steps=2))
    assert spec.train_commands == (train,) and spec.label(train) == "toy" and spec.preset() == tiny["tiny"]
    with pytest.raises(FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        train.presets["tiny"] = ()  # type: ignore[index]
    with pytest.raises(RegistryError, match="has no preset 'huge'"):
        spec.preset("huge")
    with pytest.raises(RegistryError, match="has no training command 'fit'"):
        spec.command("fit")


def test_references_resolve_on_demand_with_one_line_errors() -> None:
    assert Ref("gencore.registry:GROUP").load() == GROUP
    assert Ref("gencore.registry:RegistryError.exit_code").load() == 2
    with pytest.raises(RegistryError, match="has no item 'huge'"):
        Ref("hvae_captcha.config:PRESETS", "huge").load()
    with pytest.raises(RegistryError, match="cannot import no_such_module_here"):
        Ref("no_such_module_here:X").load()
    with pytest.raises(RegistryError, match="not of the form 'module:attr'"):
        Ref("gencore.registry.GROUP").load()
    hvae = SPECS["hvae-captcha"].command()
    assert hvae.preset("original") == tuple(importlib.import_module("hvae_captcha.config").PRESETS["original"])


# --- the copied hatch hook -----------------------------------------------------------------------------------------


def test_every_model_package_uses_the_same_hatch_hook() -> None:
    """hatchling loads a metadata hook from a path inside the package (an sdist carries nothing from outside it),
    so each package has its own copy of hatch_build.py: they must stay byte-identical."""
    copies = {}
    for folder, pyproject in FOLDERS.items():
        if folder == "core":
            continue
        hook = pyproject["tool"]["hatch"]["metadata"]["hooks"]["custom"]
        assert hook["path"] == "hatch_build.py" and hook["gencore-min-version"], folder
        assert pyproject["project"]["dynamic"] == ["dependencies", "readme"], folder
        copies[folder] = (ROOT / "packages" / folder / "hatch_build.py").read_bytes()
    assert len(copies) >= 5
    reference = copies["dcgan-tutorial"]
    differ = sorted(folder for folder, text in copies.items() if text != reference)
    assert not differ, f"hatch_build.py differs from packages/dcgan-tutorial/hatch_build.py in: {differ}"


# --- a new package: registered, it runs through the shared tests --------------------------------------------------

TOY = {
    "toy_gen/__init__.py": '''"""toy-gen: an autoencoder of random points, the smallest package on gencore."""

__version__ = "0.1.0"
''',
    "toy_gen/config.py": '''from dataclasses import dataclass, field

from gencore.train import TrainConfig


def _train_defaults() -> TrainConfig:
    return TrainConfig(output_dir="runs/toy-gen", max_steps=200, batch_size=16)


@dataclass
class ModelConfig:
    dim: int = 4
    hidden: int = 16


@dataclass
class OptimConfig:
    lr: float = 1e-2  # Adam learning rate


@dataclass
class ToyConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    num_points: int = 256  # random points to autoencode
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=_train_defaults)
''',
    "toy_gen/model.py": '''import torch
from torch import nn

from gencore.checkpoint import PretrainedMixin
from toy_gen.config import ModelConfig


class ToyAE(PretrainedMixin, nn.Module):
    config_class = ModelConfig

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.net = nn.Sequential(nn.Linear(config.dim, config.hidden), nn.Tanh(), nn.Linear(config.hidden, config.dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
''',
    "toy_gen/train.py": '''import torch
import torch.nn.functional as F

from gencore.train import FitResult, Trainer, seed_everything
from toy_gen.config import ToyConfig
from toy_gen.model import ToyAE


class Points(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def build_trainer(config: ToyConfig) -> Trainer:
    seed_everything(config.train.seed)
    data = torch.randn(config.num_points, config.model.dim, generator=torch.Generator().manual_seed(config.train.seed))
    model = ToyAE(config.model)

    def step(ctx, x):
        loss = F.mse_loss(ctx.models["ae"](x), x)
        ctx.update("ae", loss)
        return {"loss": loss}

    def export(trainer: Trainer, result: FitResult) -> None:
        if result.completed:
            trainer.unwrap("ae").save_pretrained(trainer.run_dir / "model")

    opt = torch.optim.Adam(model.parameters(), lr=config.optim.lr)
    return Trainer(config.train, {"ae": model}, {"ae": opt}, step, Points(data), run_config=config,
                   export_fn=export)


def run_training(config: ToyConfig, resume: str | None = None) -> FitResult:
    return build_trainer(config).fit(resume=resume)


if __name__ == "__main__":
    import sys

    from toy_gen.cli import main

    main(["train", *sys.argv[1:]])
''',
    "toy_gen/cli.py": '''from typing import Any

import click

from gencore.cli import Group, config_from_options, config_options, run_fit, training_options
from toy_gen.config import ToyConfig


@click.group(cls=Group)
def main() -> None:
    """toy-gen: an autoencoder of random points."""


@main.command()
@training_options("runs/toy-gen")
@config_options(ToyConfig, "optim.lr", "num_points")
def train(**options: Any) -> None:
    """Train the autoencoder; writes checkpoints/ and model/ into the run directory."""
    from toy_gen.train import run_training

    config, resume = config_from_options(ToyConfig, options)
    run_fit(lambda: run_training(config, resume))
''',
    "toy_gen/package.py": '''from gencore.registry import FaultJob, PackageSpec, TrainCommand

TINY = ("num_points=64", "model.hidden=8", "train.batch_size=16", "train.max_steps=4", "train.log_every=1",
        "train.progress_bar=false", "train.report_to=none")

SPEC = PackageSpec(
    name="toy-gen",
    import_name="toy_gen",
    cli="toy_gen.cli:main",
    train_commands=(TrainCommand("train", config="toy_gen.config:ToyConfig", module="toy_gen.train",
                                 presets={"tiny": TINY}),),
    fault_job=FaultJob("train", steps=6),
)
''',
    # what `pip install` would write: the distribution's metadata with its entry point
    "toy_gen-0.1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: toy-gen\nVersion: 0.1.0\n",
    "toy_gen-0.1.0.dist-info/entry_points.txt": "[gencore.packages]\ntoy-gen = toy_gen.package:SPEC\n",
}


@pytest.fixture
def toy_package(tmp_path, monkeypatch) -> Iterator[Path]:
    """A new package, laid out as installed (module and dist-info with its entry point) in a folder put on sys.path
    and PYTHONPATH for this test only: nothing is installed into the shared environment."""
    site = tmp_path / "site"
    for rel, text in TOY.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "faults"))  # fault_jobs.py
    yield site
    for name in [m for m in sys.modules if m == "toy_gen" or m.startswith("toy_gen.")]:
        del sys.modules[name]


@pytest.mark.slow
def test_a_new_package_is_registered_and_runs_through_the_fault_jobs(tmp_path, toy_package) -> None:
    """Registered by its entry point alone, a new package is checked like the others, and the registry-driven fault
    jobs train it, kill it mid-checkpoint and resume it to the same bits, and refuse bad input in one line."""
    import fault_jobs

    spec = packages()["toy-gen"]
    check_spec(spec)
    job = fault_jobs.jobs()["toy-gen"]
    assert job.args[:1] == ("train",) and job.extra == ("--resume", "auto") and job.steps == 6

    reference = tmp_path / "reference"
    done = fault_jobs.run(job, reference, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (reference / "model" / "model.safetensors").is_file()
    digest = fault_jobs.state_digest(reference)

    trial = fault_jobs.kill_trial(job, tmp_path / "killed", digest, fault="kill:manifest:3", timeout=240)
    assert trial.killed and not trial.damaged_on_disk and trial.resumed and trial.equal, trial

    bad = fault_jobs.run(job, tmp_path / "bad", extra=("--set", "model.hiden=8"), timeout=240)
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and "hiden" in lines[0], lines


# --- make demo: every package's demo, from its registry entry ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(packages()))
def test_every_package_has_a_demo_whose_steps_parse(name):
    """`make demo` runs `gencore demo-all`, which runs each registered package's steps: every step must name a
    command and options its CLI has (parsed, not run), and write under runs/."""
    from gencore.demos import check_demo_step

    spec = packages()[name]
    assert spec.demo, f"{name} has no demo in its registry entry"
    for step in spec.demo:
        check_demo_step(spec, step)
        assert any(a.startswith("runs/") for a in step), f"{name}: demo step writes outside runs/: {step}"
    assert spec.demo_outputs and all(p.startswith("runs/") for p in spec.demo_outputs)


def test_a_broken_demo_step_is_named_before_anything_runs():
    from gencore.demos import DemoStepError, check_demo_step

    spec = packages()["dcgan-tutorial"]
    with pytest.raises(DemoStepError, match=r"demo step of dcgan-tutorial \(train --no-such-flag\)"):
        check_demo_step(spec, ["train", "--no-such-flag"])
    with pytest.raises(DemoStepError, match="no such command 'trian'"):
        check_demo_step(spec, ["trian"])
    with pytest.raises(DemoStepError, match="'x' is not a valid integer"):
        check_demo_step(spec, ["train", "--max-steps", "x"])


def test_demo_all_lists_and_refuses_unknown_packages():
    from click.testing import CliRunner

    from gencore.cli import main

    listed = CliRunner().invoke(main, ["demo-all", "--list", "--only", "m1-hyperspectral"])
    assert listed.exit_code == 0 and listed.output.startswith("m1-hyperspectral train "), listed.output
    unknown = CliRunner().invoke(main, ["demo-all", "--only", "m2"])
    assert unknown.exit_code == 2 and "no registered package named m2" in unknown.output


@pytest.mark.parametrize("name", sorted(packages()))
def test_every_package_has_a_full_demo_whose_steps_parse(name):
    """`make demo-full` (`gencore demo-all --full`) runs the commands behind each README's figures: every step
    parses against the package's CLI, writes only under runs/<package>-full (so it never resumes the short demo's
    runs), and the package states how long its README says they take."""
    from gencore.demos import check_demo_step

    spec = packages()[name]
    assert spec.demo_full and spec.demo_full_minutes >= 1, f"{name} has no full demo (or no duration)"
    for step in spec.demo_full:
        check_demo_step(spec, step)
        paths = [a for a in step if a.startswith("runs/")]
        assert paths, f"{name}: full demo step writes outside runs/: {step}"
        assert all(p.startswith(f"runs/{name}-full") for p in paths), f"{name}: {step}"
    assert spec.demo_full_outputs and all(p.startswith(f"runs/{name}-full") for p in spec.demo_full_outputs)
    assert not set(spec.demo) & set(spec.demo_full), f"{name}: the full demo repeats a short demo step"


def test_the_root_readme_states_the_full_demo_duration_of_the_registry():
    """The duration the root README gives for `make demo-full` is the sum of the packages' own estimates."""
    total = sum(spec.demo_full_minutes for spec in packages().values())
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo-full" in text and f"about {total} min" in text, total


def test_a_demo_step_must_be_a_list_and_a_full_demo_needs_its_duration():
    base = SPECS["gencore"]
    with pytest.raises(RegistryError, match="a demo step must be a non-empty list of strings"):
        dataclasses.replace(base, demo=("demo",))  # a bare string, not ("demo",)
    with pytest.raises(RegistryError, match="a demo step must be a non-empty list of strings"):
        dataclasses.replace(base, demo_full=((),), demo_full_minutes=1)
    with pytest.raises(RegistryError, match=r"needs its duration \(demo_full_minutes\)"):
        dataclasses.replace(base, demo_full_minutes=0)


def test_demo_all_full_runs_the_full_steps_and_writes_its_own_page(tmp_path, monkeypatch):
    """--full runs demo_full (not demo) and writes runs/demo-full/index.html with those steps, leaving the short
    demo's page alone; the steps themselves are replaced by a stand-in that records them."""
    from click.testing import CliRunner

    import gencore.demos as demos
    from gencore.cli import main

    ran = []
    monkeypatch.setattr(demos.subprocess, "run", lambda argv, check: ran.append(argv[2:]) or _Done(0))
    monkeypatch.chdir(tmp_path)
    listed = CliRunner().invoke(main, ["demo-all", "--list", "--full", "--only", "gencore"])
    assert listed.exit_code == 0 and listed.output.startswith("# gencore: about 1 min"), listed.output
    done = CliRunner().invoke(main, ["demo-all", "--full", "--only", "gencore"])
    assert done.exit_code == 0, done.output
    assert ran == [["gencore", *step] for step in SPECS["gencore"].demo_full]
    assert " s wall, 0 s CPU: gencore demo --output-dir runs/gencore-full" in done.output, done.output
    page = (tmp_path / "runs/demo-full/index.html").read_text(encoding="utf-8")
    assert "runs/gencore-full" in page and "runs/gencore-demo" not in page
    assert not (tmp_path / "runs/demo/index.html").exists()
    monkeypatch.setattr(demos.subprocess, "run", lambda argv, check: _Done(3))
    failed = CliRunner().invoke(main, ["demo-all", "--full", "--only", "gencore"])
    assert failed.exit_code != 0 and "demo step failed with exit code 3: gencore demo" in failed.output


class _Done:
    def __init__(self, returncode: int) -> None:
        self.returncode = returncode


@pytest.mark.parametrize("name", sorted(packages()))
def test_every_package_names_a_loader(name):
    """The contract's `load(path, device)`: every package says how a trained run (or model folder) is loaded for
    inference; tests/test_readme_python.py loads the pipelines through it."""
    from gencore.registry import resolve

    spec = packages()[name]
    assert spec.loader is not None and callable(resolve(spec.loader))


def test_gencore_loads_a_model_folder_through_its_loader(tmp_path):
    from gencore.demo import ShapesVAE, VAEConfig

    ShapesVAE(VAEConfig(latent_dim=2, channels=4)).save_pretrained(tmp_path / "model")
    assert isinstance(packages()["gencore"].load(str(tmp_path / "model")), ShapesVAE)


@pytest.mark.parametrize("name", sorted(set(packages()) - {"gencore"}))
@pytest.mark.parametrize("layout", ["model", "run"])
def test_every_loader_refuses_another_packages_model_folder_by_name(tmp_path, name, layout):
    """A model folder of another package (here gencore's demo VAE), given as a model folder or inside a run
    directory, is refused with one line before any model of this package is built; it never loads."""
    from gencore.demo import ShapesVAE, VAEConfig
    from gencore.errors import GencoreError

    folder = tmp_path / "run" / "model" if layout == "run" else tmp_path / "model"
    ShapesVAE(VAEConfig(latent_dim=2, channels=4)).save_pretrained(folder)
    given = tmp_path / "run" if layout == "run" else folder
    with pytest.raises(GencoreError) as caught:
        packages()[name].load(str(given))
    message = str(caught.value)
    assert "\n" not in message and str(given) in message, message
