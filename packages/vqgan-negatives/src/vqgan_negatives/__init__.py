"""vqgan-negatives: VQGAN + conditional transformer that turns Perlin-noise images into molecule look-alikes."""

from typing import TYPE_CHECKING

from gencore.lazy import lazy_exports, package_version

if TYPE_CHECKING:
    from vqgan_negatives.clean import CleanConfig, clean
    from vqgan_negatives.config import TransformerRunConfig, VQGANConfig
    from vqgan_negatives.data import PerlinParams, perlin_images, render_molecules
    from vqgan_negatives.model import PatchDiscriminator, VQModel
    from vqgan_negatives.pipeline import NegativesPipeline
    from vqgan_negatives.quantize import VectorQuantizer
    from vqgan_negatives.sample import conditioning_images, generate, load_pipeline
    from vqgan_negatives.transformer import CondGPT

__version__ = package_version("vqgan-negatives", __file__)  # pyproject.toml's version

__all__ = [
    "CleanConfig", "CondGPT", "NegativesPipeline", "PatchDiscriminator", "PerlinParams", "TransformerRunConfig",
    "VQGANConfig", "VQModel", "VectorQuantizer", "clean", "conditioning_images", "generate", "load_pipeline",
    "perlin_images", "render_molecules",
]  # fmt: skip

# Public names are imported on first access (PEP 562), so importing `vqgan_negatives` or its CLI loads no torch.
__getattr__, __dir__ = lazy_exports(
    __name__,
    from_modules={
        "vqgan_negatives.clean": ["CleanConfig", "clean"],
        "vqgan_negatives.config": ["TransformerRunConfig", "VQGANConfig"],
        "vqgan_negatives.data": ["PerlinParams", "perlin_images", "render_molecules"],
        "vqgan_negatives.model": ["PatchDiscriminator", "VQModel"],
        "vqgan_negatives.pipeline": ["NegativesPipeline"],
        "vqgan_negatives.quantize": ["VectorQuantizer"],
        "vqgan_negatives.sample": ["conditioning_images", "generate", "load_pipeline"],
        "vqgan_negatives.transformer": ["CondGPT"],
    },
)
