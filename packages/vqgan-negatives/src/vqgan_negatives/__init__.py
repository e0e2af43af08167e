"""vqgan-negatives: VQGAN + conditional transformer that turns Perlin-noise images into molecule look-alikes."""

__version__ = "0.1.0"
