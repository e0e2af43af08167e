"""Mode-collapse diagnostics and sample-quality figures, on features of the network from features.py.

* ``diversity``: mean pairwise feature distance of generated images divided by that of real images. About 1 for a
  healthy generator; it falls towards 0 when the generator collapses onto a few outputs.
* ``coverage``: the fraction of the data's classes that receive at least a quarter of their fair share (1/K) of
  the generated images, by the feature network's prediction (only for data with two or more classes).
* ``fd``/``kid``: Fréchet distance and KID between generated and held-out real images; ``fd_floor`` is the same
  distance between two real sets (training vs held-out images), the best a generator can hope for.
* ``fid``/``kid`` with ``evaluate --features inception`` (:func:`inception_diagnostics`): the same figures on the
  2048-d pool features of torchvision's Inception v3 (gencore.inception), the standard FID, comparable across
  runs and data sets that use the same weight file.
"""

from __future__ import annotations

import torch

from dcgan_tutorial.features import FeatureNet
from gencore.metrics import frechet_distance, kernel_inception_distance


def mean_pairwise_distance(features: torch.Tensor, max_items: int = 512) -> float:
    """Average Euclidean distance between distinct items (first ``max_items``)."""
    f = features[:max_items].double()
    d = torch.cdist(f, f)
    n = len(f)
    return float(d.sum() / max(n * (n - 1), 1))


def coverage(predicted: torch.Tensor, num_classes: int) -> float:
    """Fraction of classes with at least 1/(4K) of the predictions."""
    counts = torch.bincount(predicted, minlength=num_classes).double()
    share = counts / counts.sum().clamp(min=1)
    return float((share >= 0.25 / num_classes).double().mean())


def image_diagnostics(net: FeatureNet, fake: torch.Tensor, real: torch.Tensor, num_classes: int) -> dict[str, float]:
    """diversity, coverage (if the net predicts classes), fd and kid of ``fake`` against ``real``."""
    f_fake, p_fake = net.predict(fake)
    f_real, _ = net.predict(real)
    return feature_diagnostics(net, f_fake, p_fake, f_real, num_classes)


def feature_diagnostics(
    net: FeatureNet, f_fake: torch.Tensor, p_fake: torch.Tensor, f_real: torch.Tensor, num_classes: int
) -> dict[str, float]:
    """:func:`image_diagnostics` from features and predicted classes already computed with ``net``."""
    out = {"diversity": mean_pairwise_distance(f_fake) / max(mean_pairwise_distance(f_real), 1e-12)}
    if not net.config.rotation_task and num_classes >= 2:
        out["coverage"] = coverage(p_fake, num_classes)
    out["fd"] = frechet_distance(f_fake, f_real)
    n = min(len(f_fake), len(f_real))
    out["kid"] = kernel_inception_distance(f_fake, f_real, subsets=10, subset_size=min(n, 500))[0]
    return out


def real_floor(net: FeatureNet, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, float]:
    """fd and kid between two real image sets: the floor for the same figures on generated images."""
    fa, _ = net.predict(real_a)
    fb, _ = net.predict(real_b)
    n = min(len(fa), len(fb))
    return {
        "fd_floor": frechet_distance(fa, fb),
        "kid_floor": kernel_inception_distance(fa, fb, subsets=10, subset_size=min(n, 500))[0],
    }


INCEPTION_BATCH = 32  # images per Inception call; independent of --batch-size, whose batches of 299 px would be large


def inception_diagnostics(
    net: torch.nn.Module, fake: torch.Tensor, real: torch.Tensor, real_train: torch.Tensor
) -> dict[str, float]:
    """fid/kid of ``fake`` against ``real`` and their floor (``real_train`` against ``real``) on Inception features.

    Every image is first rounded to 8 bits as ``sample --save-dir`` writes it, so ``fid`` is the figure an external
    FID tool gives on the saved files with the same weights and resizing.
    """
    from gencore.inception import inception_features, to_uint8

    f_fake, f_real, f_train = (inception_features(net, to_uint8(x), INCEPTION_BATCH) for x in (fake, real, real_train))

    def kid(a: torch.Tensor, b: torch.Tensor) -> float:
        return kernel_inception_distance(a, b, subsets=10, subset_size=min(len(a), len(b), 1000))[0]

    out = {"fid": frechet_distance(f_fake, f_real), "fid_floor": frechet_distance(f_train, f_real)}
    out["fid_over_floor"] = out["fid"] / max(out["fid_floor"], 1e-12)
    out.update({"kid": kid(f_fake, f_real), "kid_floor": kid(f_train, f_real)})
    return out
