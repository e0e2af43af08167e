"""Classification of labeled pixels from few labels: M1 features against raw spectra.

The usual hyperspectral protocol: N labeled pixels per class (class-balanced, seeded) train a linear
classifier, every other labeled pixel tests it (background 0 is never used); repeated over several seeds.
Reported: overall accuracy (OA), average per-class accuracy (AA) and Cohen's kappa.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from gencore.progress import progress as progress_bar
from m1_hyperspectral.data import labeled_split


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """OA, AA (mean of per-class recalls, over the classes present in ``y_true``) and Cohen's kappa, by
    scikit-learn; a perfect single-class prediction has kappa 1 (scikit-learn's 0/0 is NaN there)."""
    import warnings

    from sklearn.metrics import accuracy_score, balanced_accuracy_score, cohen_kappa_score

    if len(np.union1d(y_true, y_pred)) == 1:  # one class, all right: scikit-learn's kappa would be 0/0
        return {"oa": 1.0, "aa": 1.0, "kappa": 1.0}
    oa = float(accuracy_score(y_true, y_pred))
    with warnings.catch_warnings():  # a class predicted but absent from the test pixels is normal with few labels
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        aa = float(balanced_accuracy_score(y_true, y_pred))
    return {"oa": oa, "aa": aa, "kappa": float(cohen_kappa_score(y_true, y_pred))}


def make_classifier(kind: str):  # noqa: ANN201 - a scikit-learn estimator
    """A standardising pipeline with a linear classifier: ``logreg`` or ``svm`` (linear SVM)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    if kind == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
    if kind == "svm":
        return make_pipeline(StandardScaler(), LinearSVC(C=1.0, max_iter=20000))
    raise ValueError(f"classifier must be logreg or svm, got {kind!r}")


def compare(
    features: dict[str, np.ndarray],
    labels: np.ndarray,
    per_class: Sequence[int],
    repeats: int = 5,
    classifier: str = "logreg",
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, float | int | str]]:
    """For every feature set and every N in ``per_class``: mean and std of OA/AA/kappa over ``repeats`` splits.

    All feature sets use the same splits (seed + repeat), so the comparison is paired. ``progress`` receives
    each finished row as a table line; the fits themselves show a bar on a terminal (:mod:`gencore.progress`).
    """
    rows: list[dict[str, float | int | str]] = []
    for n in per_class:
        splits = [labeled_split(labels, n, seed + r) for r in range(repeats)]
        for name, x in features.items():
            runs = []
            for train, test in progress_bar(splits, total=len(splits), desc=f"{name}, N={n}", unit="split"):
                clf = make_classifier(classifier).fit(x[train], labels[train])
                runs.append(scores(labels[test], clf.predict(x[test])))
            row: dict[str, float | int | str] = {"features": name, "labels_per_class": n, "repeats": repeats}
            for key in ("oa", "aa", "kappa"):
                values = np.array([r[key] for r in runs])
                row[key], row[f"{key}_std"] = float(values.mean()), float(values.std())
            rows.append(row)
            if progress:
                progress(format_row(row))
    return rows


def format_row(row: dict) -> str:
    """One markdown table row: features, N, OA, AA, kappa (percent, mean ± std)."""
    cells = [f"{100 * row[k]:.1f} ± {100 * row[k + '_std']:.1f}" for k in ("oa", "aa", "kappa")]
    return f"| {row['features']} | {row['labels_per_class']} | " + " | ".join(cells) + " |"


TABLE_HEADER = "| features | labels/class | OA (%) | AA (%) | kappa (×100) |\n|---|---|---|---|---|"
