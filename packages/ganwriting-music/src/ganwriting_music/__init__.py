"""ganwriting-music: GANwriting-style generator of handwritten music symbols in the style of a writer."""

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

__version__ = "0.1.0"

__all__ = [
    "CLASSES",
    "FONTS",
    "PRESETS",
    "DataConfig",
    "Discriminator",
    "GanwritingConfig",
    "Generator",
    "LossConfig",
    "ModelConfig",
    "Networks",
    "OptimConfig",
    "Recognizer",
    "StyleEncoder",
    "SymbolClassifier",
]
