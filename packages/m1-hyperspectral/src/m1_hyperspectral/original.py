"""M1 models trained with the original code (dpkingma/nips14-ssl) turned into model folders of this package.

The original (``anglepy/models/GPUVAE_Z_X.py``, ``VAE_Z_X.py``, trained by ``gpulearn_z_x.py``) keeps two
parameter dictionaries: ``v`` for q(z|x) and ``w`` for p(x|z). Data are column vectors (one pixel per column), so a
layer is ``W.dot(h) + b`` with ``W`` of shape (out, in), as in ``torch.nn.Linear``, and ``b`` of shape (out, 1):

=====================  =========================================================================================
``v``: q(z|x)          ``w0`` (H0, bands), ``b0`` (H0, 1), ``w1`` (H1, H0), ``b1`` ... hidden layers;
                       ``mean_w``/``mean_b`` and ``logvar_w``/``logvar_b`` (latent, H_last), (latent, 1)
``w``: p(x|z)          ``w0`` (P0, latent), ``b0`` ... hidden layers; ``out_w``/``out_b`` (bands, P_last), (bands, 1)
                       (bernoulli: sigmoid probabilities; gaussian: the mean); gaussian adds ``out_logvar_w`` and
                       ``out_logvar_b``; bounded01 adds ``out_logvar_b`` (one log-variance per band) and
                       ``out_unif`` (the logit of the uniform component's weight)
=====================  =========================================================================================

The likelihood is read from which keys ``w`` has. The hidden non-linearity (``nonlinear_q``/``nonlinear_p``) is
not saved by the original, so it is an argument (``softplus`` for MNIST and SVHN in ``gpulearn_z_x.py``, ``tanh``
for Frey faces; the original's ``rectlin`` is ``relu`` here). The original computes softplus as
``log(exp(x) + 1)``; torch's Softplus returns x itself above x = 20, a difference below 3e-9.

Files. ``ndict.savez`` writes ``<name>.ndict.tar.gz``: a gzipped tar holding ``arrays.npz`` (the arrays in sorted
key order as ``arr_0``, ``arr_1``...) and ``names.txt`` (the sorted keys, one a line); a run folder holds
``v.ndict.tar.gz``/``w.ndict.tar.gz`` (last) and ``v_best``/``w_best`` (best validation bound). Both members are
read without unpickling anything (``np.load(..., allow_pickle=False)``); any other member is refused. The one-file
alternative is a ``.npz`` whose keys are ``v.<name>`` and ``w.<name>``. Pickle files (a port that saved its
dictionaries with cPickle) are refused: re-save them as such a ``.npz`` (the package README shows three lines).

The imported model has ``logvar_bound = 0`` (log-variances unclamped, as in the original), so it computes the
original's equations; its band normalisation is the identity (band_min 0, band_range 1: the input is taken as the
original's x, which must lie in [0, 1] because this package clips normalised values to that range) unless the
per-band statistics the original's inputs were normalised with are given.
"""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from gencore.errors import CheckpointError
from gencore.memory import require_memory
from m1_hyperspectral.model import M1, M1Config, require_memory_for

__all__ = ["ACTIVATIONS", "find_pair", "read_original", "read_ndict", "convert", "import_original", "PRODUCER"]

#: The producer named in the manifest of a folder written by :func:`import_original`.
PRODUCER = "m1-hyperspectral import-original"
#: The original's non-linearity names -> this package's.
ACTIVATIONS = {"softplus": "softplus", "tanh": "tanh", "relu": "relu", "rectlin": "relu"}

_HIDDEN = re.compile(r"^[wb](\d+)$")
_COLUMNS = "(the width of the layer before it: the original's matrices are (out, in))"


def _hidden_layers(
    params: Mapping[str, np.ndarray], where: str, count: int, width: int, prefix: str, out: dict[str, np.ndarray]
) -> list[int]:
    """The hidden layers ``w0, b0 .. w<count-1>`` of one parameter dictionary as ``<prefix>.<2i>.weight/bias`` of
    this package's MLP (into ``out``), each matrix checked against the width before it; returns their widths."""
    widths = []
    for i in range(count):
        wi = _array(params, f"w{i}", where)
        if wi.shape[1] != width:
            raise CheckpointError(f"{where}: 'w{i}' has shape {wi.shape}, expected {width} columns {_COLUMNS}")
        out[f"{prefix}.{2 * i}.weight"] = wi
        out[f"{prefix}.{2 * i}.bias"] = _array(params, f"b{i}", where, (wi.shape[0],))
        widths.append(wi.shape[0])
        width = wi.shape[0]
    return widths


def _kind(path: Path) -> str:
    """What ``path`` holds, from its first bytes: ``tar.gz``, ``npz``, ``npy``, ``pickle`` or ``unknown``."""
    with open(path, "rb") as fh:
        head = fh.read(6)
    if head.startswith(b"\x1f\x8b"):
        return "tar.gz"
    if head.startswith(b"PK"):
        return "npz"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head[:1] in (b"\x80", b"(", b"]", b"}", b"c"):
        return "pickle"
    return "unknown"


def read_ndict(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an ``ndict.savez`` file (``.ndict.tar.gz``), by name, without unpickling anything."""
    path = Path(path)
    try:
        tar = tarfile.open(path, "r:gz")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CheckpointError(f"{path} is not a readable ndict .tar.gz file ({exc})") from None
    members: dict[str, bytes] = {}
    with tar:
        try:
            for member in tar.getmembers():
                if member.name not in ("arrays.npz", "names.txt") or not member.isfile():
                    raise CheckpointError(
                        f"{path}: unexpected member {member.name!r} (an ndict file holds arrays.npz and names.txt)"
                    )
                require_memory(member.size, f"{path}: {member.name}", CheckpointError)
                fh = tar.extractfile(member)
                members[member.name] = fh.read() if fh is not None else b""
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise CheckpointError(f"{path} is not a readable ndict .tar.gz file ({exc})") from None
    for name in ("arrays.npz", "names.txt"):
        if name not in members:
            raise CheckpointError(f"{path}: no {name} in the archive (not an ndict file written by ndict.savez)")
    try:
        names = members["names.txt"].decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: names.txt is not plain text") from None
    arrays = _load_npz(io.BytesIO(members["arrays.npz"]), f"{path}: arrays.npz")
    if sorted(arrays) != sorted(f"arr_{i}" for i in range(len(names))):
        raise CheckpointError(
            f"{path}: names.txt lists {len(names)} names but arrays.npz holds {len(arrays)} arrays "
            f"({', '.join(sorted(arrays)[:4])})"
        )
    out = {}
    for i, name in enumerate(names):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name in out:
            raise CheckpointError(f"{path}: bad or repeated parameter name {name!r} in names.txt")
        out[name] = arrays[f"arr_{i}"]
    return out


def _load_npz(source: io.BytesIO | Path, where: str) -> dict[str, np.ndarray]:
    try:
        with np.load(source, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as exc:  # an object array needs pickle: refused
        raise CheckpointError(f"{where}: holds something other than plain numeric arrays ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - any failure of a foreign file is the file's problem
        raise CheckpointError(f"{where} is not a readable .npz file ({type(exc).__name__}: {exc})") from None


def find_pair(path: str | Path, last: bool = False) -> tuple[Path, Path]:
    """(v file, w file) of ``path``: a run folder of the original (``v_best``/``w_best``, or ``v``/``w`` with
    ``last``) or one of the two ``.ndict.tar.gz`` files (the other is found beside it)."""
    path = Path(path)
    if path.is_dir():
        stems = ("v", "w") if last else ("v_best", "w_best")
        pair = tuple(path / f"{s}.ndict.tar.gz" for s in stems)
        missing = [p.name for p in pair if not p.is_file()]
        if missing:
            raise CheckpointError(
                f"{path}: no {' and '.join(missing)} (a run folder of nips14-ssl's gpulearn_z_x holds v_best/w_best "
                "and v/w .ndict.tar.gz files)"
            )
        return pair  # type: ignore[return-value]
    if not path.is_file():
        raise CheckpointError(f"file not found: {path}")
    name = path.name
    if name[:1] not in ("v", "w"):
        raise CheckpointError(
            f"{path}: cannot tell whether this is the encoder (v...) or the decoder (w...) file; pass the run folder"
        )
    other = path.with_name(("w" if name[0] == "v" else "v") + name[1:])
    if not other.is_file():
        raise CheckpointError(f"{path}: its partner {other.name} is not beside it (q(z|x) and p(x|z) are both needed)")
    return (path, other) if name[0] == "v" else (other, path)


def read_original(
    path: str | Path, last: bool = False
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[Path]]:
    """(v, w, files read) of an original M1: a run folder, an ``.ndict.tar.gz`` file or a ``.npz``
    (keys ``v.<name>``, ``w.<name>``)."""
    path = Path(path)
    if path.is_file():
        kind = _kind(path)
        if kind == "pickle":
            raise CheckpointError(
                f"refusing to unpickle {path}: pickle files can run arbitrary code; re-save the v and w "
                "dictionaries as one .npz with keys v.<name> and w.<name> (see the README)"
            )
        if kind == "npy":
            raise CheckpointError(f"{path} holds a single array; give an .npz with keys v.<name> and w.<name>")
        if kind == "npz":
            arrays = _load_npz(path, str(path))
            v, w = {}, {}
            for key, value in arrays.items():
                prefix, _, name = key.partition(".")
                if prefix not in ("v", "w") or not name:
                    raise CheckpointError(f"{path}: unknown key {key!r} (expected v.<name> or w.<name>)")
                (v if prefix == "v" else w)[name] = value
            return v, w, [path]
        if kind != "tar.gz":
            raise CheckpointError(f"{path} is neither an ndict .tar.gz file of nips14-ssl nor an .npz")
    v_file, w_file = find_pair(path, last)
    return read_ndict(v_file), read_ndict(w_file), [v_file, w_file]


# --- conversion ----------------------------------------------------------------------------------------------


def _hidden(d: Mapping[str, np.ndarray], which: str, known: set[str]) -> int:
    """Number of hidden layers of ``d`` (w0/b0, w1/b1, ...); any key that is neither that nor in ``known`` is
    refused, as is a hole in the numbering."""
    indices = set()
    for key in d:
        m = _HIDDEN.match(key)
        if m:
            indices.add(int(m.group(1)))
        elif key not in known:
            hint = ""
            if key.startswith("mog_") or key == "logv":
                hint = " (a mixture-of-Gaussians or Student-t prior p(z): this package's M1 has N(0, I))"
            elif key.startswith("scale"):
                hint = " (not part of GPUVAE_Z_X/VAE_Z_X's M1)"
            raise CheckpointError(f"{which}: unknown key {key!r}{hint}")
    for i in range(max(indices) + 1 if indices else 0):
        for k in (f"w{i}", f"b{i}"):
            if k not in d:
                raise CheckpointError(f"{which}: missing key {k!r}")
    return len(indices)


def _array(d: Mapping[str, np.ndarray], key: str, which: str, shape: tuple[int, ...] | None = None,
           ndim: int = 2) -> np.ndarray:  # fmt: skip
    """``d[key]`` as float32, checked: present, floating point, finite, of ``shape`` (a bias or a per-band vector may
    be (n, 1), as the original stores it, or (n,))."""
    if key not in d:
        raise CheckpointError(f"{which}: missing key {key!r}")
    a = np.asarray(d[key])
    if a.dtype.kind != "f":
        raise CheckpointError(f"{which}: {key!r} has dtype {a.dtype}, expected floating point")
    if shape is not None and len(shape) == 1 and a.shape in ((shape[0], 1), (shape[0],)):
        a = a.reshape(shape)
    elif shape is not None and a.shape != shape:
        raise CheckpointError(f"{which}: {key!r} has shape {a.shape}, expected {shape}")
    elif shape is None and a.ndim != ndim:
        raise CheckpointError(f"{which}: {key!r} has shape {a.shape}, expected a {ndim}-D array")
    if not np.isfinite(a).all():
        raise CheckpointError(f"{which}: {key!r} holds NaN or infinite values")
    return a.astype(np.float32)


def convert(
    v: Mapping[str, np.ndarray],
    w: Mapping[str, np.ndarray],
    activation: str = "softplus",
    band_min: np.ndarray | None = None,
    band_range: np.ndarray | None = None,
    where: str = "",
) -> M1:
    """An :class:`M1` that computes what the original with parameters ``v`` (q(z|x)) and ``w`` (p(x|z)) computes.

    ``activation`` is the original's ``nonlinear_q`` = ``nonlinear_p`` (not stored in its files). Raises
    CheckpointError, naming the key, for an unknown key, a missing key, a shape that does not fit, or a layout this
    package's M1 cannot express (decoder widths that are not the encoder's reversed).
    """
    if activation not in ACTIVATIONS:
        raise CheckpointError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    qv, pw = f"{where}v (q(z|x))", f"{where}w (p(x|z))"
    n_q = _hidden(v, qv, {"mean_w", "mean_b", "logvar_w", "logvar_b"})
    n_p = _hidden(w, pw, {"out_w", "out_b", "out_logvar_w", "out_logvar_b", "out_unif"})
    if "out_unif" in w:
        likelihood = "bounded01"
        if "out_logvar_w" in w:
            raise CheckpointError(
                f"{pw}: unknown key 'out_logvar_w' (a bounded01 p(x|z) has one log-variance per band)"
            )
    elif "out_logvar_w" in w:
        likelihood = "gaussian"
    else:
        likelihood = "bernoulli"
        if "out_logvar_b" in w:
            raise CheckpointError(f"{pw}: key 'out_logvar_b' without out_logvar_w (gaussian) or out_unif (bounded01)")
    # encoder widths, from the weight matrices, each checked against the previous one
    first = _array(v, "w0" if n_q else "mean_w", qv)
    bands = first.shape[1]
    enc: dict[str, np.ndarray] = {}
    widths = _hidden_layers(v, qv, n_q, bands, "encoder", enc)
    prev = widths[-1] if widths else bands
    mean_w = _array(v, "mean_w", qv)
    latent = mean_w.shape[0]
    if mean_w.shape[1] != prev:
        raise CheckpointError(f"{qv}: 'mean_w' has shape {mean_w.shape}, expected {prev} columns {_COLUMNS}")
    enc["q_head.weight"] = np.concatenate([mean_w, _array(v, "logvar_w", qv, (latent, prev))])
    enc["q_head.bias"] = np.concatenate([_array(v, "mean_b", qv, (latent,)), _array(v, "logvar_b", qv, (latent,))])
    # decoder: this package's M1 mirrors the encoder (gpulearn_z_x builds n_hidden_p = n_hidden_q[::-1])
    dec_widths = _hidden_layers(w, pw, n_p, latent, "decoder", enc)
    prev = dec_widths[-1] if dec_widths else latent
    if dec_widths != widths[::-1]:
        raise CheckpointError(
            f"{where}decoder widths {dec_widths} are not the encoder's {widths} reversed: this package's M1 mirrors "
            "the encoder, so this model cannot be imported"
        )
    heads = [_array(w, "out_w", pw, (bands, prev))]
    biases = [_array(w, "out_b", pw, (bands,))]
    if likelihood == "gaussian":
        heads.append(_array(w, "out_logvar_w", pw, (bands, prev)))
        biases.append(_array(w, "out_logvar_b", pw, (bands,)))
    enc["p_head.weight"] = np.concatenate(heads)
    enc["p_head.bias"] = np.concatenate(biases)
    if likelihood == "bounded01":
        enc["p_logvar_bias"] = _array(w, "out_logvar_b", pw, (bands,))
        enc["p_uniform_logit"] = _array(w, "out_unif", pw, (bands,))
    lo = np.zeros(bands, np.float32) if band_min is None else np.asarray(band_min, np.float32).reshape(-1)
    span = np.ones(bands, np.float32) if band_range is None else np.asarray(band_range, np.float32).reshape(-1)
    for name, a in (("band_min", lo), ("band_range", span)):
        if a.shape != (bands,) or not np.isfinite(a).all():
            raise CheckpointError(f"{where}{name} must be {bands} finite values (one per band), got shape {a.shape}")
    if (span <= 0).any():
        raise CheckpointError(f"{where}band_range must be positive")
    enc["band_min"], enc["band_range"] = lo, span
    config = M1Config(bands=bands, hidden=widths, latent=latent, activation=ACTIVATIONS[activation],
                      likelihood=likelihood, logvar_bound=0.0)  # fmt: skip
    require_memory_for(config, training=False, where=where, error=CheckpointError)
    model = M1(config)
    state = {k: torch.from_numpy(np.ascontiguousarray(a)) for k, a in enc.items()}
    from gencore.weights import load_weights

    return load_weights(model, state, where.rstrip(": ") or "the original's parameters", "an M1 of nips14-ssl").eval()


def read_normalization(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(band_min, band_range) from an ``.npz`` holding those two arrays."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"file not found: {path}")
    arrays = _load_npz(path, str(path))
    extra = sorted(set(arrays) - {"band_min", "band_range"})
    if extra or len(arrays) != 2:
        raise CheckpointError(f"{path}: expected exactly the arrays band_min and band_range, got {sorted(arrays)}")
    return arrays["band_min"], arrays["band_range"]


def import_original(
    source: str | Path,
    output: str | Path,
    activation: str = "softplus",
    last: bool = False,
    normalization: str | Path | None = None,
    overwrite: bool = False,
) -> M1:
    """Convert the original M1 at ``source`` and write it to ``output`` (a model folder: ``config.json``,
    ``model.safetensors``, ``imported_from.json``), atomically; returns the model.

    ``output`` follows the output rule (:func:`gencore.checkpoint.check_output_dir`): a new or empty folder, or an
    earlier output of this command with ``overwrite``; checked before anything is read.
    """
    import json

    from safetensors.torch import save_file

    from gencore.checkpoint import atomic_dir, check_output_dir
    from gencore.config import to_dict

    check_output_dir(output, PRODUCER, overwrite)
    v, w, files = read_original(source, last)
    lo = span = None
    if normalization is not None:
        lo, span = read_normalization(normalization)
    model = convert(v, w, activation, lo, span, where=f"{source}: ")
    with atomic_dir(output, overwrite=overwrite, producer=PRODUCER) as tmp:
        state = {k: t.detach().contiguous() for k, t in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps(to_dict(model.config), indent=2) + "\n")
        record = {
            "original": "dpkingma/nips14-ssl M1 (GPUVAE_Z_X / VAE_Z_X)",
            "files": [str(f) for f in files],
            "activation": activation,
            "likelihood": model.config.likelihood,
            "normalization": str(normalization) if normalization is not None else None,
        }
        (tmp / "imported_from.json").write_text(json.dumps(record, indent=2) + "\n")
    return model
