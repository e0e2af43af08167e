"""hvae-captcha: a config-built hierarchical VAE that generates CAPTCHA images, with an honest likelihood."""

from hvae_captcha.config import (
    PRESETS,
    DataConfig,
    EvalConfig,
    HVAEConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    parse_layers,
)
from hvae_captcha.model import HVAE, parameter_table

__version__ = "0.1.0"

__all__ = [
    "HVAE",
    "PRESETS",
    "DataConfig",
    "EvalConfig",
    "HVAEConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "parameter_table",
    "parse_layers",
]
