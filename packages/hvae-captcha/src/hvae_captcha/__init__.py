"""hvae-captcha: a config-built hierarchical VAE that generates CAPTCHA images, with an honest likelihood."""

from typing import TYPE_CHECKING

from gencore.lazy import lazy_exports, package_version

if TYPE_CHECKING:
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
    from hvae_captcha.pipeline import HVAEPipeline

__version__ = package_version("hvae-captcha", __file__)  # pyproject.toml's version

__all__ = [
    "HVAE",
    "HVAEPipeline",
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

# Public names are imported on first access (PEP 562), so importing `hvae_captcha` or its CLI loads no torch.
__getattr__, __dir__ = lazy_exports(
    __name__,
    from_modules={
        "hvae_captcha.config": [
            "PRESETS",
            "DataConfig",
            "EvalConfig",
            "HVAEConfig",
            "LossConfig",
            "ModelConfig",
            "OptimConfig",
            "parse_layers",
        ],
        "hvae_captcha.model": ["HVAE", "parameter_table"],
        "hvae_captcha.pipeline": ["HVAEPipeline"],
    },
)
