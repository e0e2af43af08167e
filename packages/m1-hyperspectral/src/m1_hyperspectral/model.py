"""M1 (Kingma et al. 2014): a VAE whose encoder mean is used as features for a separate classifier.

x is one pixel's spectrum, normalised per band to [0, 1] with the minimum and range of the training pixels;
those statistics are buffers of the model, so a saved model takes raw spectra. q(z|x) and p(x|z) are MLPs
(the paper: two hidden layers of 500 softplus units, 50 latent units). The KL to the N(0, I) prior is analytic
(the original's "gaussianmarg"), so the ELBO is log p(x|z) - KL(q(z|x) || p(z)) with one sample of z.

Likelihoods of the normalised band values (as in the original code):
- ``bernoulli``: cross-entropy with the decoder's sigmoid output (values in [0, 1] taken as probabilities);
- ``gaussian``: a mean and a log-variance per band, both from the decoder;
- ``bounded01``: a sigmoid mean, one learned log-variance per band, mixed with a uniform density on [0, 1] with
  a learned weight per band (robust to outliers): p = w + (1 - w) N(x; mean, var).
Log-variances are soft-clamped to (-10, 10) (the original did not clamp, which can give NaNs);
``logvar_bound = 0`` turns the clamp off, as in the original (models imported from it by
``m1_hyperspectral.original``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gencore.checkpoint import PretrainedMixin, load_pretrained
from gencore.errors import CheckpointError, ConfigError, GencoreError
from gencore.losses import bernoulli_log_likelihood, gaussian_kl, gaussian_log_likelihood, soft_clamp
from gencore.memory import require_model_memory

ACTIVATIONS = {"softplus": nn.Softplus, "tanh": nn.Tanh, "relu": nn.ReLU}
LOGVAR_BOUND = 10.0


@dataclass
class M1Config:
    """Architecture of a saved M1 model (``model/config.json``)."""

    bands: int = 100
    hidden: list[int] = field(default_factory=lambda: [500, 500])
    latent: int = 50
    activation: str = "softplus"
    likelihood: str = "gaussian"
    # log-variances of q(z|x) and p(x|z) are soft-clamped to (-logvar_bound, logvar_bound); 0 = not clamped (the
    # original's equations: models imported from nips14-ssl)
    logvar_bound: float = LOGVAR_BOUND

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.likelihood not in ("gaussian", "bernoulli", "bounded01"):
            raise ValueError(f"likelihood must be gaussian, bernoulli or bounded01, got {self.likelihood!r}")
        if self.bands < 1 or self.latent < 1 or any(h < 1 for h in self.hidden):
            raise ValueError("bands, latent and hidden widths must be positive")
        if not self.logvar_bound >= 0:
            raise ValueError(f"logvar_bound must be >= 0 (0 = no clamp), got {self.logvar_bound!r}")


def require_memory_for(
    config: M1Config,
    *,
    training: bool,
    where: str = "",
    error: type[GencoreError] = ConfigError,
    device: str | None = None,
) -> None:
    """Refuse, in one line and before anything is allocated, an M1 of ``config`` that cannot fit in memory.

    Counted on the meta device (:func:`gencore.memory.require_model_memory`): with ``training`` the weights,
    their gradients and Adam's two moments (on ``device``: default CUDA when available), else the weights.
    ``where`` prefixes the message (a file name).
    """
    what = f"{where}M1 model with hidden={list(config.hidden)}, latent={config.latent}, bands={config.bands}"
    require_model_memory(lambda: M1(config), what, training=training, error=error, device=device)


def _mlp(widths: list[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for w_in, w_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(w_in, w_out), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


class M1(PretrainedMixin, nn.Module):
    """The M1 VAE over spectra of ``config.bands`` bands."""

    config_class = M1Config

    def __init__(self, config: M1Config) -> None:
        super().__init__()
        self.config = config
        enc = [config.bands, *config.hidden]
        self.encoder = _mlp(enc, config.activation)
        # Mean and log-variance heads share one matrix multiply (one GEMM instead of two: faster on CPU).
        self.q_head = nn.Linear(enc[-1], 2 * config.latent)
        dec = [config.latent, *config.hidden[::-1]]
        self.decoder = _mlp(dec, config.activation)
        self.p_head = nn.Linear(dec[-1], (2 if config.likelihood == "gaussian" else 1) * config.bands)
        if config.likelihood == "bounded01":
            self.p_logvar_bias = nn.Parameter(torch.full((config.bands,), -4.0))
            self.p_uniform_logit = nn.Parameter(torch.full((config.bands,), -4.0))
        self.register_buffer("band_min", torch.zeros(config.bands))
        self.register_buffer("band_range", torch.ones(config.bands))

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str = "cpu") -> M1:
        """Build the model of ``directory/config.json`` and load ``model.safetensors`` (verified).

        The size the config asks for is checked first: a config whose model cannot fit in memory (``hidden``,
        ``latent`` or ``bands`` of absurd width) is refused in one line before anything is allocated.
        """
        from gencore.config import from_dict

        def build(raw: dict) -> M1:
            try:
                config = from_dict(M1Config, raw)
            except ConfigError as exc:
                raise CheckpointError(f"{directory}/config.json: {exc}") from None
            require_memory_for(config, training=False, where=f"{directory}/config.json: ", error=CheckpointError)
            return cls(config)

        return load_pretrained(directory, build, map_location, expected=cls)  # type: ignore[return-value]

    # --- normalisation ---------------------------------------------------------------------------------------

    def set_normalization(self, spectra: torch.Tensor) -> None:
        """Store per-band minimum and range of (training) ``spectra`` (N, bands)."""
        lo, hi = spectra.min(0).values, spectra.max(0).values
        self.band_min.copy_(lo)
        self.band_range.copy_((hi - lo).clamp(min=1e-6))

    def normalize(self, spectra: torch.Tensor) -> torch.Tensor:
        """Raw spectra -> [0, 1] per band (values outside the training range are clipped)."""
        return ((spectra - self.band_min) / self.band_range).clamp(0.0, 1.0)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] band values -> the units of the raw spectra."""
        return x * self.band_range + self.band_min

    # --- the two distributions -------------------------------------------------------------------------------

    def _bound(self, logvar: torch.Tensor) -> torch.Tensor:
        """Soft-clamp a log-variance to (-logvar_bound, logvar_bound), or leave it as it is (bound 0)."""
        bound = self.config.logvar_bound
        return soft_clamp(logvar, bound) if bound > 0 else logvar

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) of normalised spectra: mean and log-variance (the original's ``dist_qz``)."""
        h = self.encoder(x)
        mean, logvar = self.q_head(h).chunk(2, dim=-1)
        return mean, self._bound(logvar)

    def decode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Parameters of p(x|z): ``logits`` (bernoulli) or ``mean`` and ``logvar`` (gaussian, bounded01)."""
        h = self.decoder(z)
        out = self.p_head(h)
        if self.config.likelihood == "bernoulli":
            return {"logits": out}
        if self.config.likelihood == "gaussian":
            mean, logvar = out.chunk(2, dim=-1)
            return {"mean": mean, "logvar": self._bound(logvar)}
        return {"mean": torch.sigmoid(out), "logvar": self._bound(self.p_logvar_bias).expand_as(out)}

    def log_px(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """log p(x|z) per pixel, summed over bands."""
        kind = self.config.likelihood
        if kind == "bernoulli":
            return bernoulli_log_likelihood(params["logits"], x)
        if kind == "gaussian":
            return gaussian_log_likelihood(x, params["mean"], params["logvar"])
        log_normal = -0.5 * (
            math.log(2 * math.pi) + params["logvar"] + (x - params["mean"]) ** 2 / params["logvar"].exp()
        )
        log_w = F.logsigmoid(self.p_uniform_logit)  # log of the uniform component's weight
        log_1mw = F.logsigmoid(-self.p_uniform_logit)
        return torch.logaddexp(log_w.expand_as(x), log_1mw + log_normal).sum(-1)

    def mean_x(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """The expected normalised spectrum under p(x|z)."""
        return torch.sigmoid(params["logits"]) if "logits" in params else params["mean"]

    # --- bounds ----------------------------------------------------------------------------------------------

    def elbo(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Single-sample ELBO per pixel with its two terms: ``elbo = rec - kl`` (nats), each of shape (N,)."""
        mean, logvar = self.encode(x)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        rec = self.log_px(x, self.decode(z))
        kl = gaussian_kl(mean, logvar)
        return {"elbo": rec - kl, "rec": rec, "kl": kl}

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """(k, N) importance log-weights log p(x, z_i) - log q(z_i|x) with z_i ~ q(z|x)."""
        mean, logvar = self.encode(x)
        std = (0.5 * logvar).exp()
        z = mean + torch.randn(k, *mean.shape, device=x.device, dtype=x.dtype) * std
        log_q = gaussian_log_likelihood(z.flatten(0, 1), mean.repeat(k, 1), logvar.repeat(k, 1)).view(k, -1)
        log_p = gaussian_log_likelihood(z.flatten(0, 1), torch.zeros_like(z.flatten(0, 1)), 0.0).view(k, -1)
        rec = self.log_px(x.repeat(k, 1), self.decode(z.flatten(0, 1))).view(k, -1)
        return rec + log_p - log_q

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The ELBO terms of normalised spectra (what training differentiates)."""
        return self.elbo(x)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` spectra in raw units: the mean of p(x|z) for z drawn from the prior."""
        p = next(self.parameters())
        z = torch.randn(n, self.config.latent, generator=generator).to(p.device, p.dtype)
        return self.denormalize(self.mean_x(self.decode(z)))

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """Parameter groups for Adam: weight matrices with ``weight_decay``, biases and the rest without.

        Adam's ``weight_decay`` adds ``weight_decay * w`` to the gradient, i.e. the gradient of a Gaussian log-prior
        on the weights; the original put its prior in exactly this way (no extra autograd work per step).
        """
        matrices = [m.weight for m in self.modules() if isinstance(m, nn.Linear)]
        ids = {id(p) for p in matrices}
        rest = [p for p in self.parameters() if id(p) not in ids]
        return [{"params": matrices, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
