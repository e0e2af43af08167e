"""vqgan-negatives: VQGAN + conditional transformer that turns Perlin-noise images into molecule look-alikes."""

from vqgan_negatives.clean import CleanConfig, clean
from vqgan_negatives.config import TransformerRunConfig, VQGANConfig
from vqgan_negatives.data import PerlinParams, perlin_images, render_molecules
from vqgan_negatives.model import PatchDiscriminator, VQModel
from vqgan_negatives.quantize import VectorQuantizer
from vqgan_negatives.sample import conditioning_images, generate, load_pipeline
from vqgan_negatives.transformer import CondGPT

__version__ = "0.1.0"

__all__ = [
    "CleanConfig", "CondGPT", "PatchDiscriminator", "PerlinParams", "TransformerRunConfig", "VQGANConfig",
    "VQModel", "VectorQuantizer", "clean", "conditioning_images", "generate", "load_pipeline", "perlin_images",
    "render_molecules",
]  # fmt: skip
