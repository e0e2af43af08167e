"""Load a ganwriting-music Mashcima export with Mashcima's own loader (from a local checkout) and report counts.

    python benchmarks/mashcima_layout_check.py --reference /tmp/mashcima [--export DIR] [--output JSON]

--reference is a Mashcima checkout (github.com/Jirka-Mayer/Mashcima: the folder holding mashcima/). Without
--export, a tiny untrained model of all 20 classes is exported into a temporary folder first (the layout does
not depend on training). Mashcima's ``SymbolRepository`` module imports muscima, appdirs, requests, tqdm and cv2
at the top; those its default-sprite loader does not call are stubbed when not installed, and cv2.imread is
replaced by Pillow's grey read when OpenCV is missing (both listed in the JSON). For every set, the loader's
``_load_default_sprite`` reads each exported name (the loader finds ``default_symbols`` next to its module file,
so the module's ``__file__`` is pointed at the set), and the note groups are loaded as Mashcima builds them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import types
from pathlib import Path


def _stub_missing() -> list[str]:
    stubbed = []
    for name in ("muscima", "muscima.io", "appdirs", "requests", "tqdm"):
        try:
            importlib.import_module(name)
        except ImportError:
            module = types.ModuleType(name)
            module.parse_cropobject_list = module.CropObject = None
            module.user_data_dir = lambda *a, **k: tempfile.gettempdir()  # noqa: ARG005
            module.tqdm = None
            sys.modules[name] = module
            stubbed.append(name)
    try:
        importlib.import_module("cv2")
    except ImportError:
        import numpy as np
        from PIL import Image

        cv2 = types.ModuleType("cv2")
        cv2.IMREAD_GRAYSCALE = 0
        cv2.imread = lambda path, flag=0: np.asarray(Image.open(path).convert("L"))  # noqa: ARG005
        cv2.resize = None
        sys.modules["cv2"] = cv2
        stubbed.append("cv2 (imread via Pillow)")
    return stubbed


def _export_tiny(folder: Path) -> Path:
    import torch

    from ganwriting_music.config import CLASSES, ModelConfig
    from ganwriting_music.mashcima import mashcima_plan, save_mashcima
    from ganwriting_music.model import Networks, NetworksConfig
    from ganwriting_music.train import generate

    torch.manual_seed(0)
    model = ModelConfig(gen_channels=4, dis_channels=4, rec_channels=4, style_dim=8, class_dim=4, noise_dim=4, k_refs=2)
    nets = Networks(NetworksConfig(model, 32, list(CLASSES), ["a", "b"])).eval()
    plan = mashcima_plan(CLASSES)
    labels = torch.tensor([CLASSES.index(s.cls) for s in plan] * 2)
    refs = torch.rand(len(labels), 2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        images = generate(nets.gen, refs, labels)
    save_mashcima(images, plan, folder, CLASSES, threshold=0.5)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, type=Path, help="Mashcima checkout (holds mashcima/).")
    parser.add_argument("--export", type=Path, default=None, help="An export-mashcima folder [default: a tiny one].")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/mashcima_layout_check.json"))
    args = parser.parse_args()
    if not (args.reference / "mashcima" / "SymbolRepository.py").is_file():
        sys.exit(f"error: {args.reference} is not a Mashcima checkout (no mashcima/SymbolRepository.py)")
    stubbed = _stub_missing()
    sys.path.insert(0, str(args.reference.resolve()))
    loader = importlib.import_module("mashcima.SymbolRepository")  # the module only, not mashcima/__init__ callers
    from ganwriting_music.mashcima import MASHCIMA_NAMES, check_layout

    with tempfile.TemporaryDirectory() as tmp:
        export = args.export or _export_tiny(Path(tmp) / "export")
        rules = check_layout(export)
        result = {"reference": str(args.reference), "export": str(export) if args.export else "tiny model",
                  "stubbed_modules": stubbed, "sets": {}}  # fmt: skip
        original = loader.__file__
        try:
            for set_name in sorted(rules):
                loader.__file__ = str(Path(export) / set_name / "SymbolRepository.py")
                sprites = {}
                for name in sorted(rules[set_name]):
                    sprite = loader._load_default_sprite(name)
                    values = sorted(set(sprite.mask.flatten().tolist()))
                    assert values == [0.0, 1.0] or values == [1.0], f"{name}: mask values {values}"
                    sprites[name] = {"width": sprite.width, "height": sprite.height, "x": sprite.x, "y": sprite.y,
                                     "ink_pixels": int(sprite.mask.sum())}  # fmt: skip
                groups = {}
                names = set(rules[set_name])
                if {"note_eighth_notehead", "note_eighth_stem", "note_eighth_flag_8"} <= names:
                    groups["eighth_note"] = sorted(loader._load_default_eighth_note().sprites)
                if {f"note_sixteenth_{p}" for p in ("notehead", "stem", "flag_8", "flag_16")} <= names:
                    groups["sixteenth_note"] = sorted(loader._load_default_sixteenth_note().sprites)
                for name in names & {"clef_g", "clef_f", "clef_c"}:
                    groups[name] = sorted(loader._load_default_sprite_group("clef", name).sprites)
                result["sets"][set_name] = {"sprites": sprites, "groups": groups}
        finally:
            loader.__file__ = original
    loaded = sum(len(s["sprites"]) for s in result["sets"].values())
    result["counts"] = {"sets": len(result["sets"]), "sprites_loaded": loaded,
                        "names_per_set": len(MASHCIMA_NAMES) if not args.export else None}  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["counts"]))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
