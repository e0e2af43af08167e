"""dcgan-tutorial: the classic GAN/DCGAN lesson as a package on gencore."""

from dcgan_tutorial.config import DataConfig, GANConfig, ModelConfig, TipsConfig
from dcgan_tutorial.model import DCGANDiscriminator, DCGANGenerator, FCDiscriminator, FCGenerator, build_models

__version__ = "0.1.0"

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "DataConfig",
    "FCDiscriminator",
    "FCGenerator",
    "GANConfig",
    "ModelConfig",
    "TipsConfig",
    "build_models",
]
