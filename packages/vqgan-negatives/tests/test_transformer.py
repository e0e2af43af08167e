"""Conditional prior: shapes, top-k, causal masking, sampling, training, the generation pipeline."""

from __future__ import annotations

import pytest
import torch

from vqgan_negatives.config import GPTConfig
from vqgan_negatives.data import PerlinParams
from vqgan_negatives.sample import conditioning_images, generate, load_pipeline
from vqgan_negatives.transformer import CondGPT, top_k_filter


def _gpt(size: int = 16, length: int = 9) -> CondGPT:
    torch.manual_seed(0)
    return CondGPT(GPTConfig(vocab_size=2 * size, block_size=2 * length, n_layer=1, n_head=2, n_embd=16))


def test_top_k_filter_keeps_the_k_largest():
    logits = torch.tensor([[1.0, 5.0, 3.0, 2.0]])
    out = top_k_filter(logits, 2)
    assert torch.isinf(out[0, [0, 3]]).all() and torch.equal(out[0, [1, 2]], logits[0, [1, 2]])
    assert torch.equal(top_k_filter(logits, None), logits) and torch.equal(top_k_filter(logits, 10), logits)


def test_logit_shapes_and_causality():
    gpt = _gpt().eval()
    cond, target = torch.randint(0, 16, (2, 9)), torch.randint(0, 16, (2, 9))
    logits = gpt(cond, target[:, :-1])
    assert logits.shape == (2, 9, 16)
    changed = target.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 16
    later = gpt(cond, changed[:, :-1])
    assert torch.allclose(logits[:, :6], later[:, :6], atol=1e-5)  # position 5 only affects predictions after it
    other_cond = (cond + 1) % 16
    assert not torch.allclose(gpt(other_cond, target[:, :-1])[:, 0], logits[:, 0])  # the condition matters


def test_sampling_shapes_determinism_and_top_k():
    gpt = _gpt()
    cond = torch.randint(0, 16, (3, 9))
    a = gpt.sample(cond, 9, temperature=1.0, top_k=4, generator=torch.Generator().manual_seed(1))
    b = gpt.sample(cond, 9, temperature=1.0, top_k=4, generator=torch.Generator().manual_seed(1))
    assert a.shape == (3, 9) and torch.equal(a, b) and a.max() < 16
    greedy = gpt.sample(cond, 9, top_k=1, generator=torch.Generator().manual_seed(2))
    greedy2 = gpt.sample(cond, 9, top_k=1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(greedy, greedy2)  # top-1 is argmax whatever the seed
    assert gpt.training  # restored
    with pytest.raises(ValueError):
        gpt.sample(cond, 9, temperature=0.0)


def test_the_cached_step_gives_the_full_forward_logits():
    """Sampling runs one token per step through a key/value cache: its logits are the full forward's."""
    from vqgan_negatives.transformer import KVCache

    gpt = _gpt().eval()
    cond, target = torch.randint(0, 16, (2, 9)), torch.randint(0, 16, (2, 9))
    full = gpt(cond, target)  # row j predicts target position j
    caches = [KVCache() for _ in gpt.blocks]
    with torch.no_grad():
        step = [gpt._step(cond + gpt.codebook_size, 0, caches)]
        for j in range(8):
            step.append(gpt._step(target[:, j : j + 1], 9 + j, caches))
    assert torch.allclose(torch.stack(step, dim=1), full[:, :9], atol=1e-5)
    caches = [KVCache() for _ in gpt.blocks]
    with torch.no_grad():  # a prefix, then several tokens at once (the masked branch)
        gpt._step(cond + gpt.codebook_size, 0, caches)
        assert torch.allclose(gpt._step(target[:, :4], 9, caches), full[:, 4], atol=1e-5)


def test_sampling_follows_the_model_probabilities():
    """Inverse-CDF sampling from the seeded uniforms draws each code as often as its probability says."""
    gpt = _gpt(size=4, length=1).eval()
    cond = torch.randint(0, 4, (1, 1)).repeat(4000, 1)
    codes = gpt.sample(cond, 1, generator=torch.Generator().manual_seed(0))[:, 0]
    probs = torch.softmax(gpt(cond[:1], cond[:1, :0])[0, -1], dim=-1)
    freq = torch.bincount(codes, minlength=4).float() / len(codes)
    assert torch.allclose(freq, probs, atol=0.03), (freq, probs)
    top2 = gpt.sample(cond[:500], 1, top_k=2, generator=torch.Generator().manual_seed(1))[:, 0]
    assert set(top2.tolist()) <= set(probs.topk(2).indices.tolist())


def test_prior_learns_a_fixed_mapping():
    gpt = _gpt()
    cond = torch.randint(0, 16, (4, 9))
    target = (cond * 3 + 1) % 16
    opt = torch.optim.AdamW(gpt.parameters(), 1e-2)
    first = gpt.loss(cond, target).item()
    for _ in range(60):
        loss = gpt.loss(cond, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first


def test_pipeline_end_to_end(trained_pipeline):
    vq_dir, gpt_dir = trained_pipeline
    pipe = load_pipeline(gpt_dir)
    assert pipe.gpt.config.block_size == 2 * pipe.vq.config.code_side**2
    for kind in ("perlin", "gaussian"):
        cond = conditioning_images(kind, 3, 32, 1, PerlinParams(scale=8.0))
        out = generate(pipe.vq, pipe.gpt, cond, temperature=1.0, top_k=8, seed=0)
        assert out.shape == (3, 1, 32, 32) and out.abs().max() <= 1
        assert torch.equal(out, generate(pipe.vq, pipe.gpt, cond, temperature=1.0, top_k=8, seed=0))
    assert (gpt_dir / "samples").is_dir()


def test_pipeline_from_a_training_checkpoint(trained_pipeline):
    gpt_dir = trained_pipeline[1]
    early = load_pipeline(gpt_dir / "checkpoints" / "step_000002")
    final = load_pipeline(gpt_dir)
    assert early.name == "gpt@step_000002"
    w_early, w_final = early.gpt.head.weight, final.gpt.head.weight
    assert w_early.shape == w_final.shape and not torch.equal(w_early, w_final)
    assert torch.equal(early.vq.quantizer.embedding, final.vq.quantizer.embedding)


def test_transformer_resume_is_exact(trained_pipeline, tmp_path, tiny_gpt_config):
    from gencore.testing import assert_resume_exact
    from vqgan_negatives.train_transformer import build_trainer

    vq_dir = trained_pipeline[0]
    assert_resume_exact(lambda out, steps: build_trainer(tiny_gpt_config(out, vq_dir, f"train.max_steps={steps}"))[0],
                        tmp_path, stop_at=2, total=4)  # fmt: skip


def test_lazy_codes_are_those_of_the_fixed_chunks_whatever_asks_first():
    from vqgan_negatives.config import QuantizerConfig, VQModelConfig
    from vqgan_negatives.model import VQModel
    from vqgan_negatives.train_transformer import ENCODE_CHUNK, LazyCodePairs, LazyCodes, encode_codes

    torch.manual_seed(0)
    vq = VQModel(VQModelConfig(resolution=16, ch=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(),
                             quantizer=QuantizerConfig(codebook_size=16, codebook_dim=4))).eval()  # fmt: skip
    cond, target = torch.rand(3 * ENCODE_CHUNK + 3, 1, 16, 16) * 2 - 1, torch.rand(3 * ENCODE_CHUNK + 3, 1, 16, 16)
    eager = [encode_codes(vq, x, batch_size=ENCODE_CHUNK) for x in (cond, target)]
    lazy = LazyCodes(vq, cond, target)
    c, t = lazy.get(torch.tensor([ENCODE_CHUNK + 1, 2]))
    assert lazy.done.tolist() == [True, True, False, False]  # only the chunks asked for were encoded
    assert torch.equal(c, eager[0][[ENCODE_CHUNK + 1, 2]]) and torch.equal(t, eager[1][[ENCODE_CHUNK + 1, 2]])
    pairs = LazyCodePairs(LazyCodes(vq, cond, target), list(range(len(target)))[::-1])
    assert torch.equal(pairs.cond, eager[0].flip(0)) and torch.equal(pairs.target, eager[1].flip(0))
    batch = torch.stack([pairs[i] for i in (0, 5)])
    assert torch.equal(pairs.codes(batch)[1], eager[1][batch])
