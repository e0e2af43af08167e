"""m1-hyperspectral: the M1 VAE of Kingma et al. (2014) on hyperspectral pixels, on gencore."""

from typing import TYPE_CHECKING

from gencore.lazy import lazy_exports, package_version

if TYPE_CHECKING:
    from m1_hyperspectral.config import DataConfig, M1RunConfig, ModelConfig, SynthConfig
    from m1_hyperspectral.data import Pixels, Scene, labeled_split, load_scene, load_scenes, pixels_from_scenes
    from m1_hyperspectral.features import extract_features, load_features, save_features
    from m1_hyperspectral.model import M1, M1Config
    from m1_hyperspectral.pipeline import M1Pipeline
    from m1_hyperspectral.synth import make_scene

__version__ = package_version("m1-hyperspectral", __file__)  # pyproject.toml's version

__all__ = [
    "DataConfig",
    "M1",
    "M1Config",
    "M1Pipeline",
    "M1RunConfig",
    "ModelConfig",
    "Pixels",
    "Scene",
    "SynthConfig",
    "extract_features",
    "labeled_split",
    "load_features",
    "load_scene",
    "load_scenes",
    "make_scene",
    "pixels_from_scenes",
    "save_features",
]

# Public names are imported on first access (PEP 562), so importing `m1_hyperspectral` or its CLI loads no torch.
__getattr__, __dir__ = lazy_exports(
    __name__,
    from_modules={
        "m1_hyperspectral.config": ["DataConfig", "M1RunConfig", "ModelConfig", "SynthConfig"],
        "m1_hyperspectral.data": [
            "Pixels",
            "Scene",
            "labeled_split",
            "load_scene",
            "load_scenes",
            "pixels_from_scenes",
        ],
        "m1_hyperspectral.features": ["extract_features", "load_features", "save_features"],
        "m1_hyperspectral.model": ["M1", "M1Config"],
        "m1_hyperspectral.pipeline": ["M1Pipeline"],
        "m1_hyperspectral.synth": ["make_scene"],
    },
)
