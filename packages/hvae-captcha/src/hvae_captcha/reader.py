"""A small CNN that reads CAPTCHA text: the objective check of text-conditioned samples.

No pretrained recogniser can be downloaded here, so :func:`train_reader` fits one on real rendered CAPTCHAs (the
run's own training images): three conv stages down to a (4, 16) map, averaged over the height, then one linear
layer from the remaining columns to ``text_length`` heads over the vocabulary plus padding. Its accuracy on the
held-out real images is the ceiling; :func:`text_accuracy` on conditioned samples, asked for the held-out texts,
says how often the requested characters came out readable.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gencore.checkpoint import PretrainedMixin
from gencore.nn import evaluating
from gencore.progress import progress
from gencore.seeding import local_rng
from hvae_captcha.config import ORIGINAL_VOCABULARY


@dataclass
class ReaderConfig:
    """Input shape and text format of a :class:`CaptchaReader`."""

    channels: int = 1
    height: int = 32
    width: int = 128
    vocabulary: str = ORIGINAL_VOCABULARY
    text_length: int = 6  # heads; shorter texts are read as padding after their end
    width_features: int = 64  # channels of the last stage


class CaptchaReader(PretrainedMixin, nn.Module):
    """Images in [0, 1] (B, C, H, W) -> logits (B, text_length, vocabulary + 1); the last class is padding."""

    config_class = ReaderConfig

    def __init__(self, config: ReaderConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width_features

        def stage(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                                 nn.MaxPool2d(2))  # fmt: skip

        self.features = nn.Sequential(stage(config.channels, 16), stage(16, 32), stage(32, w),
                                      nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU())  # fmt: skip
        columns = config.width // 8
        self.classes = len(config.vocabulary) + 1
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(w * columns, config.text_length * self.classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h = self.features(images * 2 - 1).mean(2)  # (B, w, columns): characters fill the height
        return self.head(h.flatten(1)).view(len(images), self.config.text_length, self.classes)

    def targets(self, texts: list[str]) -> torch.Tensor:
        """(B, text_length) class indices of ``texts`` (padding after the end)."""
        index = {ch: i for i, ch in enumerate(self.config.vocabulary)}
        pad = self.classes - 1
        rows = [[index[t[k]] if k < len(t) else pad for k in range(self.config.text_length)] for t in texts]
        return torch.tensor(rows)

    @torch.no_grad()
    def read(self, images: torch.Tensor) -> list[str]:
        """The text the reader sees in each image (padding dropped)."""
        with evaluating(self):
            best = self(images).argmax(-1)
        vocab = self.config.vocabulary
        return ["".join(vocab[i] for i in row if i < len(vocab)) for row in best.tolist()]


def train_reader(
    images: torch.Tensor, texts: list[str], config: ReaderConfig, steps: int = 1500, batch_size: int = 32,
    seed: int = 0, device: str | torch.device = "cpu",
) -> CaptchaReader:  # fmt: skip
    """Fit a reader on uint8 images (N, C, H, W) and their texts: Adam, cross-entropy per position, with a
    random shift of up to 4 columns/2 rows as augmentation (the renderer's jitter is larger; this keeps the reader
    from keying on exact pixel positions, which generated images will not match).

    The reader is built and the batches and shifts drawn on the CPU (so the same for every device), then trained
    on ``device``, each batch moved there; it is returned on ``device``."""
    with local_rng(seed, device) as generator:
        reader = CaptchaReader(config).to(device)
        targets = reader.targets(texts).to(device)
        opt = torch.optim.Adam(reader.parameters(), 2e-3)
        warm = max(1, steps // 20)  # short warm-up, then a linear decay to zero (works for any number of steps)
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * (1 - s / (steps + 1)))
        reader.train()
        for _ in progress(range(steps), total=steps, desc="reader"):
            idx = torch.randint(len(images), (batch_size,), generator=generator)
            x = images[idx].to(device).float() / 255
            dx, dy = (int(v) for v in torch.randint(-4, 5, (1,), generator=generator).tolist() +
                      torch.randint(-2, 3, (1,), generator=generator).tolist())  # fmt: skip
            x = torch.roll(x, (dy, dx), (2, 3))
            loss = F.cross_entropy(reader(x).flatten(0, 1), targets[idx.to(device)].flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
    return reader.eval()


@torch.no_grad()
def text_accuracy(reader: CaptchaReader, images: torch.Tensor, texts: list[str]) -> dict[str, float]:
    """Character accuracy (over the characters of the texts) and whole-text accuracy of images in [0, 1] (on any
    device: moved to the reader's 256 at a time)."""
    reader.eval()
    device = next(reader.parameters()).device
    logits = torch.cat([reader(images[i : i + 256].to(device)) for i in range(0, len(images), 256)])
    target = reader.targets(texts).to(device)
    present = target != reader.classes - 1
    hit = logits.argmax(-1) == target
    return {"char_accuracy": float(hit[present].float().mean()), "text_accuracy": float(hit.all(1).float().mean())}
