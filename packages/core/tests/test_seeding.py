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


@pytest.fixture
def two_fake_cuda_devices(monkeypatch):
    """torch.cuda with two devices whose default generators are CPU generators: what local_rng does to a CUDA
    device's generator (seed, save, restore) is then visible without a GPU."""
    generators = (torch.Generator().manual_seed(100), torch.Generator().manual_seed(101))
    monkeypatch.setattr(torch.cuda, "default_generators", generators)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(generators))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": generators[device].get_state())
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device="cuda": generators[device].set_state(state))
    return generators


@pytest.mark.parametrize(("device", "index"), [("cuda:0", 0), ("cuda:1", 1), ("cuda", 1), (torch.device("cuda", 0), 0)])
def test_the_accelerator_generator_is_seeded_for_the_block_and_restored(two_fake_cuda_devices, device, index):
    """Dropout on CUDA draws from the device's generator: it must be seeded like the CPU one (issue 24)."""
    gens = two_fake_cuda_devices
    before = [g.get_state() for g in gens]
    expected = torch.rand(5, generator=torch.Generator().manual_seed(9))
    with local_rng(9, device):
        assert torch.equal(torch.rand(5, generator=gens[index]), expected)  # seeded with the block's seed
        assert torch.equal(gens[1 - index].get_state(), before[1 - index])  # the other device untouched
    assert all(torch.equal(g.get_state(), s) for g, s in zip(gens, before))  # both as they were


def test_the_accelerator_generator_is_restored_after_an_exception(two_fake_cuda_devices):
    state = two_fake_cuda_devices[0].get_state()
    with pytest.raises(RuntimeError), local_rng(0, "cuda:0"):
        torch.rand(3, generator=two_fake_cuda_devices[0])
        raise RuntimeError
    assert torch.equal(two_fake_cuda_devices[0].get_state(), state)


@pytest.mark.parametrize("device", [None, "cpu", torch.device("cpu"), "meta"])
def test_the_cpu_and_meta_devices_touch_no_accelerator_generator(monkeypatch, device):
    def refuse(*args, **kwargs):
        raise AssertionError("an accelerator generator was touched for a CPU loop")

    for name in ("get_rng_state", "set_rng_state", "manual_seed", "current_device"):
        monkeypatch.setattr(torch.cuda, name, refuse)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    expected = _fit(3)
    with local_rng(3, device) as gen:
        net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
        out = net(torch.randn(8, 4, generator=gen))
    assert torch.equal(net[0].weight, expected[0]) and torch.equal(out, expected[1])
    assert torch.equal(torch.get_rng_state(), state)


def test_a_one_device_accelerator_is_seeded_through_its_module(monkeypatch):
    """MPS: no per-device generators and no current_device(); its module's manual_seed seeds the one device."""
    generator = torch.Generator().manual_seed(100)
    before = generator.get_state()
    monkeypatch.setattr(torch.mps, "manual_seed", lambda seed: generator.manual_seed(seed))
    monkeypatch.setattr(torch.mps, "get_rng_state", lambda device="mps": generator.get_state())
    monkeypatch.setattr(torch.mps, "set_rng_state", lambda state, device="mps": generator.set_state(state))
    expected = torch.rand(5, generator=torch.Generator().manual_seed(9))
    with local_rng(9, "mps"):
        assert torch.equal(torch.rand(5, generator=generator), expected)
    assert torch.equal(generator.get_state(), before)


def test_torch_seed_keeps_every_working_seed_and_folds_the_rest():
    """Derived streams (seed * 1_000_003 + epoch) of a seed up to MAX_SEED fit torch's manual_seed; below 2**64
    nothing changes, so runs made before keep their data order."""
    from gencore.config import MAX_SEED
    from gencore.seeding import torch_seed
    from gencore.train.sampler import ShardedBatchSampler

    assert torch_seed(12345) == 12345 and torch_seed(2**64 - 1) == 2**64 - 1 and torch_seed(2**64 + 5) == 5
    torch.Generator().manual_seed(torch_seed(MAX_SEED * 1_000_003 + 7))
    sampler = ShardedBatchSampler(10, batch_size=2, seed=MAX_SEED)
    assert sorted(i for batch in sampler for i in batch) == list(range(10))
