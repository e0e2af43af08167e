"""gencore.memory: what is available (RAM, ulimit, cgroup), the one-line refusal, and model sizes counted on the
meta device without allocating."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gencore import memory
from gencore.errors import CheckpointError, ConfigError, DataError
from gencore.memory import (
    MemoryBudget,
    ModelSize,
    available_memory,
    format_bytes,
    model_size,
    require_batch_memory,
    require_memory,
    require_model_memory,
    tensor_bytes,
)

GIB = 1024**3


@pytest.fixture
def budget(monkeypatch: pytest.MonkeyPatch):
    """``budget(nbytes, source)``: pretend this much memory is available."""

    def set_budget(nbytes: int, source: str = "ram") -> None:
        monkeypatch.setattr(memory, "available_memory", lambda: MemoryBudget(nbytes, source))

    return set_budget


def test_format_bytes() -> None:
    assert format_bytes(0) == "0 B"
    assert format_bytes(1023) == "1023 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(21.3 * GIB) == "21.3 GiB"
    assert format_bytes(4 * 10**14) == "363.8 TiB"
    assert format_bytes(2**63 * 4) == "32.0 EiB"
    assert format_bytes(2**80) == "1048576.0 EiB"  # the last unit absorbs the rest


def test_tensor_bytes_has_no_overflow() -> None:
    assert tensor_bytes([32, 1, 100_000, 100_000]) == 32 * 10**10 * 4
    assert tensor_bytes([10**12, 10**12], itemsize=8) == 8 * 10**24  # Python integers, not int64


def test_available_memory_here() -> None:
    """On Linux: at most the kernel's MemAvailable, and positive; cheap enough to call at every build."""
    got = available_memory()
    assert got is not None and got.nbytes > 0
    meminfo = memory._read_kib("/proc/meminfo", "MemAvailable")
    if meminfo is not None:
        assert got.nbytes <= meminfo * 1.1  # MemAvailable moves a little between the two reads
    start = time.perf_counter()
    for _ in range(100):
        available_memory()
    assert (time.perf_counter() - start) / 100 < 0.005


def test_rlimit_as_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """ulimit -v minus what the process already maps (VmSize) is the budget when it is the smallest."""
    import resource

    vm_size = memory._read_kib("/proc/self/status", "VmSize")
    if vm_size is None:
        pytest.skip("no /proc/self/status")
    real = resource.getrlimit

    def fake(which: int) -> tuple[int, int]:
        if which == resource.RLIMIT_AS:
            return vm_size + GIB, resource.RLIM_INFINITY
        return real(which)

    monkeypatch.setattr(resource, "getrlimit", fake)
    got = available_memory()
    assert got is not None and got.source == "rlimit_as"
    assert 0.9 * GIB < got.nbytes <= GIB + 64 * 1024**2  # VmSize may have moved a little since
    assert "ulimit -v" in got.describe()


def test_cgroup_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """v2 memory.max and v1 memory.limit_in_bytes: limit - usage + reclaimable page cache; 'max' = no limit."""
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text(f"{4 * GIB}\n")
    (v2 / "memory.current").write_text(f"{3 * GIB}\n")
    (v2 / "memory.stat").write_text(f"anon 1\ninactive_file {GIB // 2}\n")
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "memory.limit_in_bytes").write_text(f"{8 * GIB}\n")
    (v1 / "memory.usage_in_bytes").write_text(f"{2 * GIB}\n")
    (v1 / "memory.stat").write_text(f"cache 5\ntotal_inactive_file {GIB}\n")
    unlimited = tmp_path / "unlimited"
    unlimited.mkdir()
    (unlimited / "memory.max").write_text("max\n")
    (unlimited / "memory.current").write_text("123\n")

    monkeypatch.setattr(memory, "_cgroup_dirs", lambda: iter([(v2, 2), (v1, 1), (unlimited, 2)]))
    assert memory._cgroup_left() == GIB + GIB // 2  # the tighter of 1.5 GiB (v2) and 7 GiB (v1)
    monkeypatch.setattr(memory, "_cgroup_dirs", lambda: iter([(unlimited, 2)]))
    assert memory._cgroup_left() is None
    monkeypatch.setattr(memory, "_cgroup_dirs", lambda: iter([(v2, 2)]))
    monkeypatch.setattr(memory, "_read_kib", lambda path, field: 100 * GIB if field == "MemAvailable" else None)
    got = available_memory()
    assert got == MemoryBudget(GIB + GIB // 2, "cgroup")
    assert "cgroup" in got.describe()


def test_no_proc_falls_back_to_physical_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_read_kib", lambda path, field: None)
    monkeypatch.setattr(memory, "_cgroup_left", lambda: None)
    monkeypatch.setattr(memory, "_rlimit_left", lambda which, field: None)
    monkeypatch.setattr(memory, "_physical_memory", lambda: 16 * GIB)
    assert available_memory() == MemoryBudget(16 * GIB, "physical")
    monkeypatch.setattr(memory, "_physical_memory", lambda: None)
    assert available_memory() is None
    require_memory(10**30, "anything")  # nothing known: no refusal


def test_require_memory_message(budget, monkeypatch: pytest.MonkeyPatch) -> None:
    budget(int(21.3 * GIB))
    require_memory(GIB, "a small thing")  # fits
    with pytest.raises(ConfigError) as info:
        require_memory(800 * GIB, "model with hidden=[10000000, 10000000]")
    message = str(info.value)
    assert message == "model with hidden=[10000000, 10000000] needs 800.0 GiB of memory, 21.3 GiB of RAM available"
    assert "\n" not in message
    with pytest.raises(DataError, match=r"x.h5: loading 'cube' needs 2.0 GiB of memory, 1.0 GiB left under the "):
        budget(GIB, "rlimit_as")
        require_memory(2 * GIB, "x.h5: loading 'cube'", DataError)
    monkeypatch.setenv("GENCORE_MEMORY_GUARD", "0")
    require_memory(800 * GIB, "switched off")


def test_require_batch_memory(budget) -> None:
    budget(21 * GIB)
    require_batch_memory(32, (1, 32, 128))
    with pytest.raises(ConfigError, match=r"^one batch of 32 images of 1x100000x100000 \(--size\) needs 1\.2 TiB"):
        require_batch_memory(32, (1, 100_000, 100_000), setting="--size")


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(7, 5)
        self.body = nn.Sequential(nn.Linear(5, 11), nn.BatchNorm1d(11), nn.Linear(11, 3, bias=False))
        self.head = self.body[0]  # shared: counted once
        self.scale = nn.Parameter(torch.ones(3, dtype=torch.float64))
        self.register_buffer("table", torch.zeros(4, 2, dtype=torch.int16))


def test_meta_count_is_exact() -> None:
    """The meta-device count equals the real module's parameters and buffers, element sizes included."""
    size = model_size(Small)
    real = Small()
    params = {id(p): p for p in real.parameters()}.values()
    assert size.parameters == sum(p.numel() for p in params) == 7 * 5 + 5 * 11 + 11 + 11 + 11 + 11 * 3 + 3
    assert size.parameter_bytes == sum(p.numel() * p.element_size() for p in params)
    assert size.buffer_bytes == sum(b.numel() * b.element_size() for b in real.buffers())
    assert size.buffer_bytes == 11 * 4 * 2 + 8 + 4 * 2 * 2  # BatchNorm running stats + counter, int16 table
    both = model_size(lambda: {"a": Small(), "b": [Small(), nn.Linear(2, 2)]})
    assert both.parameters == 2 * size.parameters + 6


def test_meta_count_allocates_nothing_and_leaves_rng_alone() -> None:
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    start = time.perf_counter()
    huge = model_size(lambda: nn.Sequential(nn.Linear(10**6, 10**6), nn.Linear(10**6, 10**6)))  # 8 TB
    assert time.perf_counter() - start < 1.0
    assert huge.parameters == 2 * (10**12 + 10**6)
    assert (torch.rand(3), random.random(), np.random.rand())[1:] == expected[1:]
    torch.manual_seed(0)
    assert torch.equal(torch.rand(3), expected[0])


def test_training_counts_gradients_and_adam_state(budget) -> None:
    size = ModelSize(parameters=10, parameter_bytes=40, buffer_bytes=8)
    assert size.inference_bytes == 48
    assert size.training_bytes() == 4 * 40 + 8
    assert size.training_bytes(optimizer_states=1, extra_copies=1) == 4 * 40 + 8

    build = lambda: nn.Linear(1000, 1000)  # 1,001,000 parameters, 4.0 MB
    budget(10 * 1024**2, "ram")  # 10 MiB: holds the weights, not weights + gradients + 2 Adam moments
    assert require_model_memory(build, "layer", training=False, device="cpu").parameters == 1_001_000
    with pytest.raises(ConfigError) as info:
        require_model_memory(build, "layer with 1000 units", device="cpu")
    assert str(info.value) == (
        "layer with 1000 units (1,001,000 parameters; weights, gradients, 2 optimizer states) needs 15.3 MiB of "
        "memory, 10.0 MiB of RAM available"
    )
    with pytest.raises(CheckpointError, match=r"1 EMA copy\) needs 19\.1 MiB"):
        budget(16 * 1024**2, "ram")
        require_model_memory(build, "layer", extra_copies=1, device="cpu", error=CheckpointError)


def test_overflowing_and_unbuildable_models(budget) -> None:
    budget(21 * GIB)
    with pytest.raises(ConfigError, match=r"^huge \(a tensor of more than 2\^63 elements\) needs 32\.0 EiB"):
        require_model_memory(lambda: nn.Linear(500, 10**20), "huge", device="cpu")

    def needs_data() -> nn.Module:  # a constructor that reads real values cannot run on meta: not checked
        layer = nn.Linear(2, 2)
        float(layer.weight.detach().sum())
        return layer

    assert require_model_memory(needs_data, "data-dependent", device="cpu") is None


def test_cuda_training_state_is_checked_on_the_device(budget, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CUDA machine the host holds the weights once, the device the training state."""

    class Props:
        total_memory = 8 * 1024**2

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: Props())
    budget(6 * 1024**2)  # host: 6 MiB holds the 4 MB of weights
    with pytest.raises(ConfigError, match=r"needs 15\.3 MiB of GPU memory, cuda:0 has 8\.0 MiB"):
        require_model_memory(lambda: nn.Linear(1000, 1000), "layer")
    with pytest.raises(ConfigError, match=r"needs 15\.3 MiB of memory, 6\.0 MiB of RAM available"):
        require_model_memory(lambda: nn.Linear(1000, 1000), "layer", device="cpu")  # trained on the CPU after all
    budget(GIB)
    assert require_model_memory(lambda: nn.Linear(1000, 1000), "layer", training=False).parameters == 1_001_000
