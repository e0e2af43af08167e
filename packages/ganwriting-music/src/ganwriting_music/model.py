"""The networks, top to bottom: style encoder, generator, discriminator, recognizer, and the evaluation classifier.

GANwriting (Kang et al. 2020) adapted to single symbols: the generator reads K reference images of one writer
through a shared convolutional encoder (averaged over the K images, so K may differ at sampling time), adds a
class embedding and noise, and decodes from a small map with AdaIN layers driven by that condition. The
discriminator judges real/fake (and, like GANwriting's writer classifier W, names the writer); the recognizer
names the class of an image. All sizes scale with the image side (a multiple of 16).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ganwriting_music.config import CLASSES, ModelConfig
from gencore.checkpoint import PretrainedMixin

__all__ = ["StyleEncoder", "Generator", "Discriminator", "Recognizer", "SymbolClassifier", "Networks", "NetworksConfig"]


class AdaIN(nn.Module):
    """Adaptive instance norm: normalise ``x`` per channel, then scale/shift from a style vector."""

    def __init__(self, channels: int, style_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.affine = nn.Linear(style_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        with torch.no_grad():  # start as plain instance norm: gamma = 1, beta = 0
            self.affine.bias.copy_(torch.cat([torch.ones(channels), torch.zeros(channels)]))

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        gamma, beta = rearrange(self.affine(style), "b (two c) -> two b c 1 1", two=2)
        return gamma * self.norm(x) + beta


def _down(c_in: int, c_out: int) -> nn.Sequential:
    """Stride-2 3×3 convolution + LeakyReLU (no normalisation: the gradient penalty and per-image style want none)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.LeakyReLU(0.2))


def _widths(base: int) -> list[int]:
    return [base, 2 * base, 4 * base, 4 * base]


class StyleEncoder(nn.Module):
    """K images of one writer (B, K, 1, S, S) -> a style vector (B, style_dim), the mean over the K images."""

    def __init__(self, channels: int, style_dim: int) -> None:
        super().__init__()
        w = _widths(channels)
        self.convs = nn.Sequential(_down(1, w[0]), _down(w[0], w[1]), _down(w[1], w[2]), _down(w[2], w[3]))
        self.proj = nn.Linear(w[3], style_dim)

    def forward(self, refs: torch.Tensor) -> torch.Tensor:
        b = refs.shape[0]
        h = self.convs(rearrange(refs, "b k c h w -> (b k) c h w")).mean((2, 3))
        return rearrange(self.proj(h), "(b k) d -> b k d", b=b).mean(1)


class _UpBlock(nn.Module):
    """×2 nearest upsampling, then ``convs`` 3×3 convolutions, each followed by AdaIN on the condition and
    LeakyReLU."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, convs: int = 2) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        # reflection padding: zero padding reads as grey at the border and leaves stripes along the image edges
        self.convs = nn.ModuleList([nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, padding_mode="reflect")
                                    for i in range(convs)])  # fmt: skip
        self.norms = nn.ModuleList([AdaIN(c_out, cond_dim) for _ in range(convs)])
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        for conv, norm in zip(self.convs, self.norms):
            x = self.act(norm(conv(x), cond))
        return x


class Generator(nn.Module):
    """(refs (B, K, 1, S, S), class labels (B,), noise (B, noise_dim)) -> images (B, 1, S, S) in [-1, 1].

    The class enters twice: as a learned embedding in the condition vector (with style and noise, it drives every
    AdaIN layer), and as the class *template*, the mean of that class's training images over all writers (a
    writer-free, blurry picture of the symbol, stored with the weights), read by a small content encoder whose
    feature maps join the decoder at every resolution (U-Net skips). The decoder then has to turn a generic
    template into this writer's symbol instead of inventing the shape from a vector, which is what lets the
    small CPU configuration learn recognizable symbols in minutes.
    """

    def __init__(self, config: ModelConfig, image_size: int, num_classes: int, num_writers: int = 1) -> None:
        super().__init__()
        self.config, self.start = config, image_size // 16
        w = _widths(config.gen_channels)
        cond = config.style_dim + config.class_dim + config.noise_dim
        self.style = StyleEncoder(config.style_channels or config.gen_channels, config.style_dim)
        self.embed = nn.Embedding(num_classes, config.class_dim)
        # names the writer from the style vector alone, so that the encoder has to keep the writer in it
        self.style_writer = nn.Linear(config.style_dim, num_writers) if config.style_writer_head else None
        self.register_buffer("templates", torch.ones(num_classes, 1, image_size, image_size))
        self.content = nn.ModuleList([_down(1, w[0]), _down(w[0], w[1]), _down(w[1], w[2]), _down(w[2], w[3])])
        self.stem = nn.Linear(cond, w[3] * self.start**2)
        # full resolution gets one narrow convolution: on a CPU it would otherwise cost most of the time
        last = max(w[0] // 2, 8)
        # the first `template_skips` blocks (coarsest first) also read the template's features at their input
        t = config.template_skips
        c_in = [w[3] + (w[3] if t > 0 else 0), w[2] + (w[2] if t > 1 else 0), w[1] + (w[1] if t > 2 else 0),
                w[0] + (w[0] if t > 3 else 0)]  # fmt: skip
        self.blocks = nn.ModuleList([
            _UpBlock(c_in[0], w[2], cond), _UpBlock(c_in[1], w[1], cond), _UpBlock(c_in[2], w[0], cond),
            _UpBlock(c_in[3], last, cond, convs=1),
        ])  # fmt: skip
        self.out = nn.Conv2d(last, 1, 3, padding=1, padding_mode="reflect")

    @torch.no_grad()
    def set_templates(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Class templates = the mean image per class of ``images`` in [-1, 1]; classes without images stay white."""
        for c in range(len(self.templates)):
            sel = labels == c
            if sel.any():
                self.templates[c] = images[sel].float().mean(0).to(self.templates.device)

    def noise(self, n: int, device: torch.device | str) -> torch.Tensor:
        """Generator noise: N(0, noise_std²) of (n, noise_dim)."""
        return torch.randn(n, self.config.noise_dim, device=device) * self.config.noise_std

    def encode_style(self, refs: torch.Tensor) -> torch.Tensor:
        """The style vector of reference images (B, K, 1, S, S)."""
        return self.style(refs)

    def decode(self, style: torch.Tensor, labels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Images from a style vector, class labels and noise."""
        cond = torch.cat([style, self.embed(labels), z], 1)
        skips, h = [], self.templates[labels]
        for down in self.content if self.config.template_skips > 0 else []:
            h = down(h)
            skips.insert(0, h)  # S/16, S/8, S/4, S/2: coarsest first, the order of the blocks
        x = rearrange(self.stem(cond), "b (c h w) -> b c h w", h=self.start, w=self.start)
        for i, block in enumerate(self.blocks):
            x = block(torch.cat([x, skips[i]], 1) if i < self.config.template_skips else x, cond)
        return torch.tanh(self.out(x))

    def forward(self, refs: torch.Tensor, labels: torch.Tensor, z: torch.Tensor | None = None,
                writer_logits: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """Images; with ``writer_logits`` also the style writer head's logits (B, num_writers) of the references
        (inside the forward pass, so that DDP sees the head used)."""
        z = self.noise(len(labels), labels.device) if z is None else z
        style = self.encode_style(refs)
        images = self.decode(style, labels, z)
        if writer_logits:
            if self.style_writer is None:
                raise ValueError("this generator has no style writer head (model.style_writer_head)")
            return images, self.style_writer(style)
        return images


class _ConvHead(nn.Module):
    """Four stride-2 convolutions and a global mean: (B, 1, S, S) -> features (B, 4·channels)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        w = _widths(channels)
        self.convs = nn.Sequential(_down(1, w[0]), _down(w[0], w[1]), _down(w[1], w[2]), _down(w[2], w[3]))
        self.dim = w[3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x).mean((2, 3))


class Discriminator(nn.Module):
    """Images (and class labels) -> (real/fake logits (B,), writer logits (B, num_writers) or None).

    With ``class_projection`` the real/fake logit gets a projection term <embed(y), features> (Miyato & Koyama
    2018), so D judges "a real gClef" rather than "a real symbol" and the class no longer rests on the recognizer
    alone (which a generator can fool with adversarial speckle)."""

    def __init__(self, config: ModelConfig, num_writers: int, num_classes: int) -> None:
        super().__init__()
        self.features = _ConvHead(config.dis_channels)
        self.adv = nn.Linear(self.features.dim, 1)
        self.writer = nn.Linear(self.features.dim, num_writers) if config.writer_head else None
        self.project = nn.Embedding(num_classes, self.features.dim) if config.class_projection else None
        if self.project is not None:
            nn.init.normal_(self.project.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.features(x)
        adv = self.adv(h)[:, 0]
        if self.project is not None:
            if labels is None:
                raise ValueError("this discriminator is class-conditional: pass the labels")
            adv = adv + (self.project(labels) * h).sum(1)
        return adv, (self.writer(h) if self.writer is not None else None)

    def logits(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Only the real/fake logits (what the gradient penalty differentiates)."""
        return self(x, labels)[0]


class Recognizer(nn.Module):
    """Images -> class logits (B, num_classes); trained on real images only.

    It reads the image average-pooled by ``rec_downsample``: a recognizer that sees every pixel is easy for the
    generator to satisfy with pixel-level speckle instead of the symbol's shape."""

    def __init__(self, config: ModelConfig, num_classes: int) -> None:
        super().__init__()
        self.pool = config.rec_downsample
        self.features = _ConvHead(config.rec_channels)
        self.head = nn.Linear(self.features.dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool > 1:
            x = F.avg_pool2d(x, self.pool)
        return self.head(self.features(x))


class SymbolClassifier(nn.Module):
    """A VGG-style symbol classifier (after apacha/MusicSymbolClassifier's "vgg" family): four stages of two
    3×3 conv + batch norm + ReLU and a max-pool, a global mean and a linear layer. It is the classifier of
    ``classifier-study`` and the feature extractor of the Fréchet distance (:meth:`features`)."""

    def __init__(self, num_classes: int, channels: int = 16, dropout: float = 0.3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c in (channels, 2 * channels, 4 * channels, 8 * channels):
            for _ in range(2):
                layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                c_in = c
            layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(c_in, num_classes)
        self.num_classes, self.channels = num_classes, channels

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, 8·channels)."""
        return self.body(x).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.features(x)))


@dataclass
class NetworksConfig:
    """What it takes to rebuild the trained networks: architecture, image size, class and writer names."""

    model: ModelConfig = field(default_factory=ModelConfig)
    image_size: int = 128
    classes: list[str] = field(default_factory=lambda: list(CLASSES))
    writers: list[str] = field(default_factory=list)


class Networks(nn.Module, PretrainedMixin):
    """Generator, discriminator and recognizer together, saved as ``config.json`` + ``model.safetensors``."""

    config_class = NetworksConfig

    def __init__(self, config: NetworksConfig) -> None:
        super().__init__()
        self.config = config
        m = config.model
        self.gen = Generator(m, config.image_size, len(config.classes), max(len(config.writers), 1))
        self.dis = Discriminator(m, max(len(config.writers), 1), len(config.classes))
        self.rec = Recognizer(m, len(config.classes))


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
