from __future__ import annotations

import pytest
import torch
from torch import nn

from gencore.seeding import local_rng


def _fit(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    with local_rng(seed) as gen:
        net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
        x = torch.randn(8, 4, generator=gen)
        out = net(x)
    return net[0].weight.detach().clone(), out.detach()


def test_the_block_depends_on_its_seed_alone():
    torch.manual_seed(1)
    w1, out1 = _fit(3)
    torch.manual_seed(2)  # another global state before the block: the same result
    w2, out2 = _fit(3)
    assert torch.equal(w1, w2) and torch.equal(out1, out2)
    assert not torch.equal(w1, _fit(4)[0])


def test_it_equals_seeding_the_global_generator_and_a_local_one():
    """What the four auxiliary loops did before (torch.manual_seed(seed) + torch.Generator().manual_seed(seed))."""
    torch.manual_seed(7)
    expected_w = nn.Linear(4, 4).weight.detach().clone()
    expected_x = torch.randn(3, generator=torch.Generator().manual_seed(7))
    with local_rng(7) as gen:
        assert torch.equal(nn.Linear(4, 4).weight, expected_w)
        assert torch.equal(torch.randn(3, generator=gen), expected_x)


def test_the_global_state_is_restored_also_after_an_exception():
    torch.manual_seed(5)
    state = torch.get_rng_state()
    with local_rng(0) as gen:
        torch.rand(10), torch.rand(10, generator=gen)
    assert torch.equal(torch.get_rng_state(), state)
    with pytest.raises(RuntimeError), local_rng(0):
        torch.rand(10)
        raise RuntimeError
    assert torch.equal(torch.get_rng_state(), state)
