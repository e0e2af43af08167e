"""dcgan-tutorial: the classic GAN/DCGAN lesson as a package on gencore."""

from typing import TYPE_CHECKING

from gencore.lazy import lazy_exports, package_version

if TYPE_CHECKING:
    from dcgan_tutorial.config import DataConfig, GANConfig, ModelConfig, TipsConfig
    from dcgan_tutorial.model import DCGANDiscriminator, DCGANGenerator, FCDiscriminator, FCGenerator, build_models
    from dcgan_tutorial.pipeline import DCGANPipeline, load_generator

__version__ = package_version("dcgan-tutorial", __file__)  # pyproject.toml's version

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "DCGANPipeline",
    "DataConfig",
    "FCDiscriminator",
    "FCGenerator",
    "GANConfig",
    "ModelConfig",
    "TipsConfig",
    "build_models",
    "load_generator",
]

# Public names are imported on first access (PEP 562), so importing `dcgan_tutorial` or its CLI loads no torch.
__getattr__, __dir__ = lazy_exports(
    __name__,
    from_modules={
        "dcgan_tutorial.config": ["DataConfig", "GANConfig", "ModelConfig", "TipsConfig"],
        "dcgan_tutorial.model": [
            "DCGANDiscriminator",
            "DCGANGenerator",
            "FCDiscriminator",
            "FCGenerator",
            "build_models",
        ],
        "dcgan_tutorial.pipeline": ["DCGANPipeline", "load_generator"],
    },
)
