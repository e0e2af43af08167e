from __future__ import annotations

import pytest
import torch
from torch import nn

from gencore import nn as gnn


def _modes(module: nn.Module) -> list[bool]:
    return [m.training for m in module.modules()]


def test_evaluating_puts_modules_in_eval_mode_and_restores_each_mode():
    net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.BatchNorm1d(4))
    frozen = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    net.append(frozen)
    frozen.eval()  # a part its owner keeps in eval mode inside a training model
    other = nn.Linear(4, 2).eval()
    before_net, before_other = _modes(net), _modes(other)
    with gnn.evaluating(net, other):
        assert not any(_modes(net)) and not any(_modes(other))
        x = torch.randn(3, 4)
        assert torch.equal(net(x), net(x))  # dropout off, BatchNorm on running statistics
    assert _modes(net) == before_net and _modes(other) == before_other
    assert net.training and not frozen.training and not frozen[1].training


def test_evaluating_restores_on_an_exception_and_nests():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
    with pytest.raises(RuntimeError, match="boom"), gnn.evaluating(net):
        raise RuntimeError("boom")
    assert all(_modes(net))
    with gnn.evaluating(net):
        with gnn.evaluating(net[1]):
            assert not any(_modes(net))
        assert not any(_modes(net))  # the inner block restores the eval mode it found
    assert all(_modes(net))
    net.eval()
    with gnn.evaluating(net):
        pass
    assert not any(_modes(net))  # a module in eval mode stays there
    with gnn.evaluating():  # nothing to switch: a no-op
        pass


def test_evaluating_tells_a_module_that_overrides_train():
    calls = []

    class Tracked(nn.Linear):
        def train(self, mode: bool = True) -> Tracked:
            calls.append(mode)
            return super().train(mode)

    net = Tracked(2, 2)
    with gnn.evaluating(net):
        pass
    assert calls == [False, True] and net.training
