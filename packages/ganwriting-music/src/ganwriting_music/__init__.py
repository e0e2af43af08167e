"""ganwriting-music: GANwriting-style generator of handwritten music symbols in the style of a writer."""

from typing import TYPE_CHECKING

from gencore.lazy import lazy_exports, package_version

if TYPE_CHECKING:
    from ganwriting_music.config import (
        CLASSES,
        FONTS,
        PRESETS,
        DataConfig,
        GanwritingConfig,
        LossConfig,
        ModelConfig,
        OptimConfig,
    )
    from ganwriting_music.model import Discriminator, Generator, Networks, Recognizer, StyleEncoder, SymbolClassifier
    from ganwriting_music.pipeline import GanwritingPipeline

__version__ = package_version("ganwriting-music", __file__)  # pyproject.toml's version

__all__ = [
    "CLASSES",
    "FONTS",
    "PRESETS",
    "DataConfig",
    "Discriminator",
    "GanwritingConfig",
    "GanwritingPipeline",
    "Generator",
    "LossConfig",
    "ModelConfig",
    "Networks",
    "OptimConfig",
    "Recognizer",
    "StyleEncoder",
    "SymbolClassifier",
]

# Public names are imported on first access (PEP 562), so importing `ganwriting_music` or its CLI loads no torch.
__getattr__, __dir__ = lazy_exports(
    __name__,
    from_modules={
        "ganwriting_music.config": [
            "CLASSES",
            "FONTS",
            "PRESETS",
            "DataConfig",
            "GanwritingConfig",
            "LossConfig",
            "ModelConfig",
            "OptimConfig",
        ],
        "ganwriting_music.model": [
            "Discriminator",
            "Generator",
            "Networks",
            "Recognizer",
            "StyleEncoder",
            "SymbolClassifier",
        ],
        "ganwriting_music.pipeline": ["GanwritingPipeline"],
    },
)
