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

__all__ = ["CondGPT", "top_k_filter"]


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        if cfg.n_embd % cfg.n_head:
            raise ValueError(f"n_embd {cfg.n_embd} must be divisible by n_head {cfg.n_head}")
        self.n_head, self.dropout = cfg.n_head, cfg.dropout
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b t (three h d) -> three b h t d", three=3, h=self.n_head)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(rearrange(y, "b h t d -> b t (h d)"))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), x + mlp(ln(x))."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.n_embd), nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.mlp = nn.Sequential(nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(),
                                 nn.Linear(4 * cfg.n_embd, cfg.n_embd), nn.Dropout(cfg.dropout))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
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

    @torch.no_grad()
    def sample(
        self,
        cond: torch.Tensor,
        length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Target codes (B, length) sampled autoregressively given ``cond`` (B, L); eval mode, restored after."""
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        target = cond.new_zeros((len(cond), 0))
        with evaluating(self):
            for _ in range(length):
                logits = self(cond, target)[:, -1] / temperature
                probs = F.softmax(top_k_filter(logits, top_k), dim=-1)
                nxt = torch.multinomial(probs.float().cpu(), 1, generator=generator).to(cond.device)
                target = torch.cat([target, nxt], dim=1)
        return target
