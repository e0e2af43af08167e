"""What every package does with its networks: :func:`evaluating` (eval mode for a block of code, each module's
own mode restored after, also on an error).

Layers live with the package that uses them (vqgan's Normalize/Upsample/Downsample/ResBlock/SelfAttention2d,
ganwriting's AdaIN, hvae's add_spectral_norm, dcgan's init_normal): the core holds what two or more packages
use, no more and no less.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

__all__ = ["evaluating"]


@contextlib.contextmanager
def evaluating(*modules: nn.Module) -> Iterator[None]:
    """Put ``modules`` in eval mode for the ``with`` block; on leaving it, also by an exception, every one of them
    and every submodule gets back the mode it had before (a part its owner keeps in eval mode stays so)::

        with torch.no_grad(), evaluating(generator, recognizer):
            accuracy = (recognizer(generator(z)).argmax(1) == y).float().mean()
    """
    tops = [(module, module.training) for module in modules]
    before = [(m, m.training) for module in modules for m in module.modules()]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for module, was in tops:  # through train(), as module.train(was) did, for a module that overrides it
            module.train(was)
        for m, was in before:  # then every submodule exactly as it was
            m.training = was
