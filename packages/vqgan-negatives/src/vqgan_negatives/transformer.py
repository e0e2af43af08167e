"""The conditional prior: a minGPT-style decoder over [conditioning codes | target codes] (taming's Net2Net).

Both images are encoded by the frozen first stage; the conditioning codes get their own embeddings by an offset of
``codebook_size`` (taming shares the table without an offset, issue #100). The model predicts only target codes,
so its head has ``codebook_size`` outputs and the loss covers the target half of the sequence.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from gencore.checkpoint import PretrainedMixin
from gencore.nn import evaluating
from vqgan_negatives.config import GPTConfig

__all__ = ["CondGPT", "KVCache", "top_k_filter"]


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        if cfg.n_embd % cfg.n_head:
            raise ValueError(f"n_embd {cfg.n_embd} must be divisible by n_head {cfg.n_head}")
        self.n_head, self.dropout = cfg.n_head, cfg.dropout
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Causal attention over ``x`` (B, T, C); with ``cache``, ``x`` continues the sequence the cache holds (its
        keys and values are appended to it), so sampling costs one token per step instead of the whole prefix."""
        q, k, v = rearrange(self.qkv(x), "b t (three h d) -> three b h t d", three=3, h=self.n_head)
        past = 0
        if cache is not None:
            past = cache.length
            k, v = cache.extend(k, v)
        dropout = self.dropout if self.training else 0.0
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        elif q.shape[2] == 1:  # one new token sees every earlier one
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        else:  # several new tokens after a prefix: each sees the prefix and the new ones before it
            t, total = q.shape[2], k.shape[2]
            mask = torch.ones(t, total, dtype=torch.bool, device=q.device).tril(diagonal=total - t)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self.proj(rearrange(y, "b h t d -> b t (h d)"))


class KVCache:
    """The keys and values of one attention layer for the tokens seen so far (sampling only)."""

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    @property
    def length(self) -> int:
        """Tokens held."""
        return 0 if self.k is None else self.k.shape[2]

    def extend(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new tokens' keys and values (B, H, T, D); returns all of them."""
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
        return self.k, self.v


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), x + mlp(ln(x))."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.n_embd), nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.mlp = nn.Sequential(nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(),
                                 nn.Linear(4 * cfg.n_embd, cfg.n_embd), nn.Dropout(cfg.dropout))  # fmt: skip

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache)
        return x + self.mlp(self.ln2(x))


def top_k_filter(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Logits with everything below the k-th largest per row set to -inf (k None or >= vocab: unchanged)."""
    if k is None or k >= logits.shape[-1]:
        return logits
    if k < 1:
        raise ValueError(f"top_k must be >= 1, got {k}")
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


class CondGPT(PretrainedMixin, nn.Module):
    """Predicts target code t_i from the conditioning codes and t_<i."""

    config_class = GPTConfig

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.codebook_size = config.vocab_size // 2
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos_emb = nn.Parameter(torch.zeros(1, config.block_size, config.n_embd))
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.Sequential(*[Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.head = nn.Linear(config.n_embd, self.codebook_size, bias=False)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:  # GPT-2 initialisation
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, cond: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Logits (B, T_target_in + 1, codebook_size) for target positions 0.. given cond (B, L) and a target prefix.

        ``target`` may be a prefix (B, j) with j < L: the last logit row predicts target position j.
        """
        seq = torch.cat([cond + self.codebook_size, target], dim=1)
        if seq.shape[1] > self.config.block_size:
            raise ValueError(f"sequence of {seq.shape[1]} tokens exceeds block_size {self.config.block_size}")
        x = self.drop(self.tok_emb(seq) + self.pos_emb[:, : seq.shape[1]])
        x = self.ln_f(self.blocks(x))
        return self.head(x[:, cond.shape[1] - 1 :])  # the row before each target token predicts it

    def loss(self, cond: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the target codes (B, L) given the conditioning codes (B, L)."""
        logits = self(cond, target[:, :-1])
        return F.cross_entropy(rearrange(logits, "b t v -> (b t) v"), target.flatten())

    def _step(self, tokens: torch.Tensor, start: int, caches: list[KVCache]) -> torch.Tensor:
        """Logits of the last of ``tokens`` (B, T), the sequence's positions ``start ..``, through the caches."""
        end = start + tokens.shape[1]
        if end > self.config.block_size:
            raise ValueError(f"sequence of {end} tokens exceeds block_size {self.config.block_size}")
        x = self.tok_emb(tokens) + self.pos_emb[:, start:end]
        for block, cache in zip(self.blocks, caches):
            x = block(x, cache)
        return self.head(self.ln_f(x[:, -1]))

    @torch.no_grad()
    def sample(
        self,
        cond: torch.Tensor,
        length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Target codes (B, length) sampled autoregressively given ``cond`` (B, L); eval mode, restored after.

        Each step runs only the newest token, through a key/value cache of the ones before it, and the codes stay
        on the model's device: the uniform numbers of inverse-CDF sampling are drawn from ``generator`` (on the
        CPU, so a seed gives the same codes on any device, up to the device's arithmetic) and moved there once.
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        uniforms = torch.rand((length, len(cond)), generator=generator, dtype=torch.float64).to(cond.device)
        target = cond.new_zeros((len(cond), length))
        caches = [KVCache() for _ in self.blocks]
        with evaluating(self):
            tokens, start = cond + self.codebook_size, 0
            for i in range(length):
                logits = self._step(tokens, start, caches) / temperature
                start += tokens.shape[1]
                probs = F.softmax(top_k_filter(logits, top_k).double(), dim=-1)
                cdf = probs.cumsum(dim=-1)
                # the first code whose cumulative probability reaches u (scaled by the sum: rounding never
                # points past the last code with a probability above zero)
                nxt = (cdf < uniforms[i, :, None] * cdf[:, -1:]).sum(dim=-1).clamp_(max=probs.shape[-1] - 1)
                target[:, i] = nxt
                tokens = nxt[:, None]
        return target
