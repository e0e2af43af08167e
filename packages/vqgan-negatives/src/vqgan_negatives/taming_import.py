"""CompVis/taming-transformers checkpoints -> model folders of this package (``vqgan-negatives import-taming``).

Two kinds of checkpoint (a Lightning ``.ckpt`` whose ``state_dict`` holds the weights, or a bare state dict):

* a first stage, taming's ``VQModel`` (``encoder.*``, ``decoder.*``, ``quantize.embedding.weight``,
  ``quant_conv.*``, ``post_quant_conv.*``; optionally ``loss.discriminator.*`` and ``loss.perceptual_loss.*``)
  becomes ``OUT/vqgan`` (+ ``OUT/discriminator``), the layout ``train-vqgan`` exports as ``RUN/model``;
* a ``Net2NetTransformer`` (``transformer.*`` of taming's minGPT, ``first_stage_model.*``,
  ``cond_stage_model.*``) becomes ``OUT/gpt`` + ``OUT/vqgan``, the layout ``train-transformer`` exports.

The architecture comes from taming's yaml (``model.params``) or, without one, from the tensor shapes; what the
shapes cannot tell (the image resolution, the transformer's head count) must be given. The imported first stage
uses the config fields that reproduce taming's layout exactly (``stem_channels = ch``,
``asymmetric_downsample``, ``quantizer.l2_normalize = False``, ``quantizer.beta_on_codebook``), so it computes
what taming computes on the same input.

What cannot be expressed is refused with one line: this package's prior reads conditioning codes made by the
*same* first stage from a conditioning image (offset by ``codebook_size``); a taming transformer whose conditioning
stage is another model (a depth or segmentation VQGAN, a coordinate stage) or that is unconditional cannot be
turned into it. So are GumbelVQ/EMA quantizers, index remapping, an ActNorm discriminator (unless
``discriminator=False``) and a transformer with ``n_unmasked`` > 0.

Reading is pickle-free: torch's weights-only unpickler, which rebuilds tensors and plain containers only. Objects
that Lightning stores beside the weights (callbacks, hyper-parameter containers) and that reader refuses are
replaced by inert placeholders and dropped with a note; they are never constructed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gencore.checkpoint import atomic_dir, check_output_dir, load_torch_file
from gencore.config import load_file, to_dict
from gencore.errors import CheckpointError, ConfigError
from gencore.fileio import atomic_write_text
from vqgan_negatives.config import DiscriminatorConfig, GPTConfig, QuantizerConfig, VQModelConfig
from vqgan_negatives.model import PatchDiscriminator, VQModel
from vqgan_negatives.transformer import CondGPT

__all__ = ["PRODUCER", "ImportResult", "import_taming", "read_checkpoint", "convert_vqmodel", "convert_transformer"]

#: The producer named in an output folder's manifest: only such a folder is replaced (with ``overwrite``).
PRODUCER = "vqgan-negatives import-taming"

VQ_TARGET = "taming.models.vqgan.VQModel"
NET2NET_TARGET = "taming.models.cond_transformer.Net2NetTransformer"
GPT_TARGET = "taming.modules.transformer.mingpt.GPT"

#: our key -> the taming key(s) it is made of (several: concatenated along the first dimension)
KeyMap = dict[str, tuple[str, ...]]


@dataclass
class ImportResult:
    """What was written where, and what the user should know about it."""

    output: Path
    kind: str  # "vqgan" or "transformer"
    models: tuple[str, ...]  # sub-folders written
    notes: list[str] = field(default_factory=list)


# --- reading -------------------------------------------------------------------------------------------------


class _Skipped:
    """Stands in for an object the weights-only reader refuses: built from nothing, holds nothing, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def _holds_skipped(value: Any, depth: int = 0) -> bool:
    if isinstance(value, _Skipped):
        return True
    if depth > 50:
        return False
    if isinstance(value, Mapping):
        return any(_holds_skipped(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_skipped(v, depth + 1) for v in value)
    return False


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The state dict of a taming checkpoint (Lightning ``.ckpt`` or a bare state dict) and notes on what was
    skipped. Pickle-based files are read with torch's weights-only unpickler only."""
    path = Path(path)
    notes: list[str] = []
    try:
        obj = load_torch_file(path, weights_only=True)
    except CheckpointError as first:
        unsafe = _unsafe_globals(path)
        if not unsafe:
            raise
        stubs = [(_Skipped, name) for name in unsafe]
        try:
            with torch.serialization.safe_globals(stubs):
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - still unreadable: the first, clearer message
            raise first from None
        shown = ", ".join(sorted(unsafe)[:3]) + (f" (+{len(unsafe) - 3} more)" if len(unsafe) > 3 else "")
        notes.append(f"objects the weights-only reader does not rebuild were skipped unread ({shown})")
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        others = sorted(str(k) for k in obj if k != "state_dict")
        if others:
            notes.append(f"ignored the checkpoint's other entries ({', '.join(others)})")
        state = obj["state_dict"]
    elif isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = obj
    else:
        what = type(obj).__name__ if not isinstance(obj, Mapping) else f"a dict with {', '.join(map(str, obj))[:80]}"
        raise CheckpointError(f"{path} holds no state_dict of a taming model (it holds {what})")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{path}: state_dict key {key!r} is not a string")
        if not isinstance(value, torch.Tensor):
            why = "an object the weights-only reader refuses" if _holds_skipped(value) else type(value).__name__
            raise CheckpointError(f"{path}: state_dict entry {key} is not a tensor ({why})")
        out[key] = value
    return out, notes


def _unsafe_globals(path: Path) -> list[str]:
    """Globals in a zip-format torch file that the weights-only unpickler refuses ([] when not such a file)."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - a legacy or damaged file: nothing to stub, the first error stands
        return []


# --- configs -------------------------------------------------------------------------------------------------


def _model_section(raw: Any, where: str) -> tuple[str, dict[str, Any]]:
    """(target, params) of a taming yaml (``model: {target, params}``) or of a bare ``{target, params}``."""
    section = raw.get("model", raw) if isinstance(raw, Mapping) else None
    if not isinstance(section, Mapping) or not isinstance(section.get("params"), Mapping):
        raise ConfigError(f"{where}: no model.params section (is it a taming-transformers config?)")
    return str(section.get("target", "")), dict(section["params"])


def _need(params: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in params:
        raise ConfigError(f"{where}: {key} is missing")
    return params[key]


def vq_config_from_params(params: Mapping[str, Any], where: str) -> tuple[VQModelConfig, dict[str, Any]]:
    """Our first-stage config from a taming VQModel's ``params`` (ddconfig, embed_dim, n_embed); also the
    loss config's params (for the discriminator)."""
    if params.get("remap") is not None:
        raise ConfigError(f"{where}: remap (index remapping) cannot be expressed by this package's quantizer")
    dd = _need(params, "ddconfig", where)
    if not isinstance(dd, Mapping):
        raise ConfigError(f"{where}: ddconfig must be a mapping")
    ddw = f"{where}: ddconfig"
    if dd.get("double_z", True):
        raise ConfigError(f"{ddw}.double_z is true: taming's VQModel needs false (quant_conv reads z_channels)")
    if not dd.get("resamp_with_conv", True):
        raise ConfigError(f"{ddw}.resamp_with_conv false (pooling instead of convolutions) cannot be expressed")
    in_ch, out_ch = int(_need(dd, "in_channels", ddw)), int(_need(dd, "out_ch", ddw))
    if in_ch != out_ch:
        raise ConfigError(f"{ddw}: out_ch {out_ch} != in_channels {in_ch}; this package reconstructs its input")
    try:
        cfg = _vq_config(
            in_channels=in_ch, resolution=int(_need(dd, "resolution", ddw)), ch=int(_need(dd, "ch", ddw)),
            ch_mult=tuple(int(m) for m in _need(dd, "ch_mult", ddw)),
            num_res_blocks=int(_need(dd, "num_res_blocks", ddw)),
            attn_resolutions=tuple(int(r) for r in _need(dd, "attn_resolutions", ddw)),
            z_channels=int(_need(dd, "z_channels", ddw)), dropout=float(dd.get("dropout", 0.0)),
            codebook_size=int(_need(params, "n_embed", where)), codebook_dim=int(_need(params, "embed_dim", where)),
        )  # fmt: skip
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    loss = params.get("lossconfig")
    loss_params = dict(loss.get("params") or {}) if isinstance(loss, Mapping) else {}
    return cfg, loss_params


def _vq_config(codebook_size: int, codebook_dim: int, **arch: Any) -> VQModelConfig:
    """A first-stage config laid out as taming's (see the module docstring)."""
    quantizer = QuantizerConfig(
        codebook_size=codebook_size, codebook_dim=codebook_dim, beta=0.25, beta_on_codebook=True,
        l2_normalize=False, ema=False, kmeans_init=False, restart_dead=False,
    )  # fmt: skip
    return VQModelConfig(**arch, stem_channels=arch["ch"], asymmetric_downsample=True, quantizer=quantizer)


def _indices(state: Mapping[str, Any], pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state if (m := rx.match(k))})


def _shape(state: Mapping[str, torch.Tensor], key: str, path: Path, ndim: int) -> tuple[int, ...]:
    if key not in state:
        raise CheckpointError(f"{path}: missing key {key} (a taming VQModel has it)")
    shape = tuple(state[key].shape)
    if len(shape) != ndim:
        raise CheckpointError(f"{path}: {key} has shape {shape}, expected {ndim} dimensions")
    return shape


def infer_vq_config(
    state: Mapping[str, torch.Tensor], path: Path, resolution: int | None, prefix: str = ""
) -> tuple[VQModelConfig, list[str]]:
    """A first-stage config from the tensor shapes alone; the list says what was inferred or assumed."""
    sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    ch, in_ch = _shape(sub, "encoder.conv_in.weight", path, 4)[:2]
    levels = _indices(sub, r"encoder\.down\.(\d+)\.")
    if levels != list(range(len(levels))) or not levels:
        raise CheckpointError(f"{path}: encoder levels {levels} are not 0..n-1")
    blocks = _indices(sub, r"encoder\.down\.0\.block\.(\d+)\.")
    ch_mult = []
    for level in levels:
        width = _shape(sub, f"encoder.down.{level}.block.0.conv1.weight", path, 4)[0]
        if width % ch:
            raise CheckpointError(f"{path}: encoder.down.{level} has {width} channels, not a multiple of ch={ch}")
        ch_mult.append(width // ch)
    attn_levels = [lv for lv in levels if f"encoder.down.{lv}.attn.0.q.weight" in sub]
    z_channels = _shape(sub, "quant_conv.weight", path, 4)[1]
    n_embed, embed_dim = _shape(sub, "quantize.embedding.weight", path, 2)
    out_ch = _shape(sub, "decoder.conv_out.weight", path, 4)[0]
    if out_ch != in_ch:
        raise CheckpointError(f"{path}: the decoder writes {out_ch} channels, the encoder reads {in_ch}; this "
                              "package reconstructs its input")  # fmt: skip
    if resolution is None:
        raise ConfigError(f"{path}: the image resolution cannot be inferred from the weights; pass taming's yaml "
                          "(--config) or --resolution")  # fmt: skip
    f = 2 ** (len(levels) - 1)
    if resolution % f:
        raise ConfigError(f"resolution {resolution} is not divisible by {f} (the model halves it {len(levels) - 1}x)")
    attn = tuple(resolution // 2**lv for lv in attn_levels)
    try:
        cfg = _vq_config(in_channels=in_ch, resolution=resolution, ch=ch, ch_mult=tuple(ch_mult),
                         num_res_blocks=len(blocks), attn_resolutions=attn, z_channels=z_channels, dropout=0.0,
                         codebook_size=n_embed, codebook_dim=embed_dim)  # fmt: skip
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    inferred = [
        f"in_channels={in_ch}", f"ch={ch}", f"ch_mult={tuple(ch_mult)}", f"num_res_blocks={len(blocks)}",
        f"attn_resolutions={attn}", f"z_channels={z_channels}", f"n_embed={n_embed}", f"embed_dim={embed_dim}",
    ]  # fmt: skip
    return cfg, [f"first stage inferred from the weights: {', '.join(inferred)}; dropout 0.0 assumed"]


# --- key maps ------------------------------------------------------------------------------------------------


def _param(m: KeyMap, ours: str, theirs: str, names: tuple[str, ...] = ("weight", "bias")) -> None:
    for n in names:
        m[f"{ours}.{n}"] = (f"{theirs}.{n}",)


def _resblock(m: KeyMap, ours: str, theirs: str, skip: bool) -> None:
    for i, name in ((0, "norm1"), (2, "conv1"), (3, "norm2"), (6, "conv2")):
        _param(m, f"{ours}.body.{i}", f"{theirs}.{name}")
    if skip:
        _param(m, f"{ours}.skip", f"{theirs}.nin_shortcut")


def _attention(m: KeyMap, ours: str, theirs: str) -> None:
    _param(m, f"{ours}.norm", f"{theirs}.norm")
    for n in ("weight", "bias"):  # one q|k|v convolution here, three in taming
        m[f"{ours}.qkv.{n}"] = tuple(f"{theirs}.{x}.{n}" for x in "qkv")
    _param(m, f"{ours}.proj", f"{theirs}.proj_out")


def _middle(m: KeyMap, part: str) -> None:
    _resblock(m, f"{part}.mid.0", f"{part}.mid.block_1", False)
    _attention(m, f"{part}.mid.1", f"{part}.mid.attn_1")
    _resblock(m, f"{part}.mid.2", f"{part}.mid.block_2", False)


def vq_key_map(cfg: VQModelConfig) -> KeyMap:
    """Every parameter of our :class:`VQModel` (built from ``cfg``) and the taming key(s) it comes from; walks the
    levels the way :class:`~vqgan_negatives.model.Encoder` and ``Decoder`` build them."""
    m: KeyMap = {}
    chans = [cfg.ch * k for k in cfg.ch_mult]
    _param(m, "encoder.conv_in", "encoder.conv_in")
    idx, c_in, res = 0, cfg.stem_channels or chans[0], cfg.resolution
    for level, c_out in enumerate(chans):
        for i in range(cfg.num_res_blocks):
            _resblock(m, f"encoder.down.{idx}", f"encoder.down.{level}.block.{i}", c_in != c_out)
            idx, c_in = idx + 1, c_out
            if res in cfg.attn_resolutions:
                _attention(m, f"encoder.down.{idx}", f"encoder.down.{level}.attn.{i}")
                idx += 1
        if level < len(chans) - 1:
            _param(m, f"encoder.down.{idx}.op", f"encoder.down.{level}.downsample.conv")
            idx, res = idx + 1, res // 2
    _middle(m, "encoder")
    _param(m, "encoder.out.0", "encoder.norm_out")
    _param(m, "encoder.out.2", "encoder.conv_out")
    _param(m, "quant_conv", "quant_conv")
    m["quantizer.embedding"] = ("quantize.embedding.weight",)
    _param(m, "post_quant_conv", "post_quant_conv")
    _param(m, "decoder.conv_in", "decoder.conv_in")
    _middle(m, "decoder")
    idx, c_in, res = 0, chans[-1], cfg.code_side
    for level in reversed(range(len(chans))):
        for i in range(cfg.num_res_blocks + 1):
            _resblock(m, f"decoder.up.{idx}", f"decoder.up.{level}.block.{i}", c_in != chans[level])
            idx, c_in = idx + 1, chans[level]
            if res in cfg.attn_resolutions:
                _attention(m, f"decoder.up.{idx}", f"decoder.up.{level}.attn.{i}")
                idx += 1
        if level > 0:
            _param(m, f"decoder.up.{idx}.conv", f"decoder.up.{level}.upsample.conv")
            idx, res = idx + 1, res * 2
    _param(m, "decoder.norm_out.0", "decoder.norm_out")
    _param(m, "decoder.conv_out", "decoder.conv_out")
    return m


#: our buffers that taming has no counterpart of: kept as a freshly built model has them
_OWN_BUFFERS = ("quantizer.usage", "quantizer.initialised", "quantizer.calls")


def _fill(
    module: torch.nn.Module,
    state: Mapping[str, torch.Tensor],
    key_map: KeyMap,
    prefix: str,
    path: Path,
    what: str,
    transforms: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
) -> set[str]:
    """Load ``module`` from the taming ``state`` through ``key_map``; returns the taming keys used. A missing
    key, a tensor of another shape: one CheckpointError naming the key."""
    expected = module.state_dict()
    unmapped = sorted(set(expected) - set(key_map) - set(_OWN_BUFFERS))
    if unmapped:  # a bug here, not the user's file
        raise RuntimeError(f"taming key map does not cover {unmapped[:3]}")
    new = dict(expected)
    used: set[str] = set()
    for ours, theirs in key_map.items():
        keys = [prefix + t for t in theirs]
        for key in keys:
            if key not in state:
                raise CheckpointError(f"{path}: missing key {key} ({what} as configured needs it)")
        parts = [state[k] for k in keys]
        want = expected[ours].shape
        each = (want[0] // len(parts), *want[1:]) if len(parts) > 1 else tuple(want)
        for key, part in zip(keys, parts):
            if transforms is None or ours not in transforms:
                if tuple(part.shape) != tuple(each):
                    raise CheckpointError(f"{path}: {key} has shape {tuple(part.shape)}, {what} needs {tuple(each)}")
        value = parts[0] if len(parts) == 1 else torch.cat(parts)
        if transforms is not None and ours in transforms:
            value = transforms[ours](value)
        new[ours] = value.detach().to(expected[ours].dtype)
        used.update(keys)
    module.load_state_dict(new, strict=True)
    return used


def _refuse_unknown(state: Mapping[str, Any], prefix: str, known: set[str], path: Path, what: str) -> None:
    unknown = sorted(k for k in state if k.startswith(prefix) and k not in known)
    if unknown:
        more = f" (+{len(unknown) - 1} more)" if len(unknown) > 1 else ""
        hint = _hint(unknown[0], prefix)
        raise CheckpointError(f"{path}: unknown key {unknown[0]}{more}: not part of {what}{hint}")


def _hint(key: str, prefix: str) -> str:
    rest = key[len(prefix) :]
    if rest.startswith("quantize.embed.") or rest.startswith("quantize.proj."):
        return " (a GumbelVQ quantizer, which this package cannot express)"
    if rest.startswith("quantize.used"):
        return " (index remapping, which this package cannot express)"
    if rest.startswith("quantize.") and "embedding.weight" not in rest:
        return " (another quantizer than taming's VectorQuantizer2, e.g. the EMA one)"
    if ".conv_shortcut." in rest:
        return " (3x3 shortcut convolutions, which taming's Encoder/Decoder never build)"
    if re.match(r"loss\.discriminator\.main\.\d+\.(loc|scale|initialized)", rest):
        return " (an ActNorm discriminator: import without it, --no-discriminator)"
    return " as configured"


# --- first stage ---------------------------------------------------------------------------------------------


def convert_vqmodel(
    state: Mapping[str, torch.Tensor], cfg: VQModelConfig, path: Path, prefix: str = ""
) -> tuple[VQModel, set[str]]:
    """Our :class:`VQModel` holding the taming first stage found under ``prefix``; and the keys it used."""
    model = VQModel(cfg).eval()
    used = _fill(model, state, vq_key_map(cfg), prefix, path, "the first stage")
    return model, used


def _disc_config(state: Mapping[str, torch.Tensor], path: Path, loss_params: Mapping[str, Any] | None) -> tuple[
    DiscriminatorConfig, str
]:  # fmt: skip
    pre = "loss.discriminator.main."
    if loss_params is not None:
        if loss_params.get("use_actnorm"):
            raise ConfigError(f"{path}: an ActNorm discriminator cannot be expressed; import with --no-discriminator")
        cfg = DiscriminatorConfig(in_channels=int(loss_params.get("disc_in_channels", 3)),
                                  ndf=int(loss_params.get("disc_ndf", 64)),
                                  n_layers=int(loss_params.get("disc_num_layers", 3)))  # fmt: skip
        return cfg, ""
    ndf, in_ch = _shape(state, pre + "0.weight", path, 4)[:2]
    n_layers = len([k for k in state if k.startswith(pre) and k.endswith(".running_mean")])
    if n_layers < 1:
        raise CheckpointError(f"{path}: the discriminator has no BatchNorm layers ({pre}N.running_mean)")
    cfg = DiscriminatorConfig(in_channels=in_ch, ndf=ndf, n_layers=n_layers)
    return cfg, f"discriminator inferred from the weights: in_channels={in_ch}, ndf={ndf}, n_layers={n_layers}"


def _convert_first_stage(
    state: Mapping[str, torch.Tensor], path: Path, params: dict[str, Any] | None, where: str,
    resolution: int | None, discriminator: bool, notes: list[str],
) -> dict[str, torch.nn.Module]:  # fmt: skip
    if params is not None:
        cfg, loss_params = vq_config_from_params(params, where)
        if resolution is not None and resolution != cfg.resolution:
            raise ConfigError(f"--resolution {resolution} contradicts {where} (ddconfig.resolution {cfg.resolution})")
    else:
        cfg, inferred = infer_vq_config(state, path, resolution)
        notes.extend(inferred)
        loss_params = None
    model, used = convert_vqmodel(state, cfg, path)
    models: dict[str, torch.nn.Module] = {"vqgan": model}
    has_disc = any(k.startswith("loss.discriminator.") for k in state)
    if has_disc and discriminator:
        disc_cfg, note = _disc_config(state, path, loss_params)
        if note:
            notes.append(note)
        disc = PatchDiscriminator(disc_cfg).eval()
        key_map = {k: ("main." + k.removeprefix("net."),) for k in disc.state_dict()}
        used |= _fill(disc, state, key_map, "loss.discriminator.", path, "the discriminator")
        models["discriminator"] = disc
    skip = {"loss.perceptual_loss.": "this package has its own perceptual loss"}
    if not discriminator:
        skip["loss.discriminator."] = "--no-discriminator"
    for p, why in skip.items():
        if any(k.startswith(p) for k in state):
            used |= {k for k in state if k.startswith(p)}
            notes.append(f"skipped {p}* ({why})")
    _refuse_unknown(state, "", used, path, "taming's VQModel")
    return models


# --- transformer ---------------------------------------------------------------------------------------------


def _gpt_params(params: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    if params is None:
        return {}
    for key, value, allowed in (
        ("unconditional", params.get("unconditional", False), (False, None)),
        ("downsample_cond_size", params.get("downsample_cond_size", -1), (-1, None)),
    ):
        if value not in allowed:
            raise ConfigError(f"{where}: {key}={value!r} cannot be expressed: this package's prior is conditioned on "
                              "the full-size conditioning image")  # fmt: skip
    cond = params.get("cond_stage_config")
    if cond != "__is_first_stage__":
        target = cond.get("target", "?") if isinstance(cond, Mapping) else cond
        raise ConfigError(
            f"{where}: the conditioning stage is {target}, not the first stage; this package's prior reads codes "
            "of the conditioning image made by the same first stage (offset by codebook_size), so a prior "
            "trained on another conditioning stage's codes cannot be expressed"
        )
    permuter = params.get("permuter_config")
    if isinstance(permuter, Mapping) and not str(permuter.get("target", "")).endswith("permuter.Identity"):
        raise ConfigError(f"{where}: permuter {permuter.get('target')} cannot be expressed (raster order only)")
    tc = params.get("transformer_config")
    if not isinstance(tc, Mapping) or not isinstance(tc.get("params"), Mapping):
        raise ConfigError(f"{where}: transformer_config.params is missing")
    if tc.get("target", GPT_TARGET) != GPT_TARGET:
        raise ConfigError(f"{where}: transformer {tc.get('target')} is not taming's minGPT ({GPT_TARGET})")
    gp = dict(tc["params"])
    if int(gp.get("n_unmasked", 0)):
        raise ConfigError(f"{where}: n_unmasked={gp['n_unmasked']} (bidirectional prefix) cannot be expressed")
    return gp


def _check_cond_stage(state: Mapping[str, torch.Tensor], path: Path) -> None:
    first = {k.removeprefix("first_stage_model."): v for k, v in state.items() if k.startswith("first_stage_model.")}
    cond = {k.removeprefix("cond_stage_model."): v for k, v in state.items() if k.startswith("cond_stage_model.")}
    reason = (
        "this package's prior reads codes of the conditioning image made by the same first stage (offset by "
        "codebook_size)"
    )
    if not cond:
        raise CheckpointError(
            f"{path}: no cond_stage_model.* weights: the transformer is unconditional or conditioned by a "
            f"weightless stage (e.g. coordinates); cannot be expressed: {reason}"
        )
    differ = sorted(set(first) ^ set(cond)) or [k for k in first if not torch.equal(first[k], cond[k])]
    if differ:
        raise CheckpointError(
            f"{path}: cond_stage_model is another model than first_stage_model (cond_stage_model.{differ[0]} "
            f"differs); cannot be expressed: {reason}"
        )


def convert_transformer(
    state: Mapping[str, torch.Tensor], vq: VQModel, gpt_params: Mapping[str, Any], path: Path,
    n_head: int | None, notes: list[str],
) -> tuple[CondGPT, set[str]]:  # fmt: skip
    """Our :class:`CondGPT` holding taming's minGPT (``transformer.*``) for the first stage ``vq``."""
    pre = "transformer."
    vocab, n_embd = _shape(state, pre + "tok_emb.weight", path, 2)
    pos = _shape(state, pre + "pos_emb", path, 3)
    block = pos[1]
    if pos[0] != 1 or pos[2] != n_embd:
        raise CheckpointError(f"{path}: {pre}pos_emb has shape {pos}, the transformer needs (1, N, {n_embd})")
    layers = _indices(state, r"transformer\.blocks\.(\d+)\.")
    if layers != list(range(len(layers))):
        raise CheckpointError(f"{path}: transformer blocks {layers} are not 0..n-1")
    codes, side = vq.config.quantizer.codebook_size, vq.config.code_side
    length = side * side
    if vocab != codes:
        raise CheckpointError(
            f"{path}: the transformer's vocabulary has {vocab} tokens, the first stage {codes} codes; this "
            "package's prior predicts exactly the first stage's codes"
        )
    if block < 2 * length - 1:
        raise CheckpointError(f"{path}: block_size {block} < {2 * length - 1}, the {length} conditioning and "
                              f"{length - 1} target codes one step needs")  # fmt: skip
    for key, value in (("vocab_size", vocab), ("block_size", block), ("n_layer", len(layers)), ("n_embd", n_embd)):
        if key in gpt_params and int(gpt_params[key]) != value:
            raise CheckpointError(f"{path}: the config says {key}={gpt_params[key]}, the weights {value}")
    heads = gpt_params.get("n_head", n_head)
    if gpt_params.get("n_head") is not None and n_head is not None and int(gpt_params["n_head"]) != n_head:
        raise ConfigError(f"--n-head {n_head} contradicts the config's n_head {gpt_params['n_head']}")
    if heads is None:
        raise ConfigError(f"{path}: n_head cannot be inferred from the weights (key/query/value are "
                          f"{n_embd}x{n_embd} for any head count); pass taming's yaml (--config) "
                          "or --n-head")  # fmt: skip
    drops = [float(gpt_params.get(k, 0.0)) for k in ("embd_pdrop", "resid_pdrop", "attn_pdrop")]
    try:
        cfg = GPTConfig(vocab_size=2 * codes, block_size=2 * length, n_layer=len(layers), n_head=int(heads),
                        n_embd=n_embd, dropout=max(drops))  # fmt: skip
        gpt = CondGPT(cfg).eval()
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not gpt_params:
        notes.append(f"transformer inferred from the weights: n_layer={len(layers)}, n_embd={n_embd}, "
                     f"vocab_size={vocab}, block_size={block}; n_head={heads} given; dropout 0.0 assumed")  # fmt: skip
    if block != 2 * length:
        notes.append(f"position table cut from block_size {block} to {2 * length} (positions a sequence uses)")
    key_map: KeyMap = {"tok_emb.weight": ("tok_emb.weight",), "pos_emb": ("pos_emb",),
                       "ln_f.weight": ("ln_f.weight",), "ln_f.bias": ("ln_f.bias",), "head.weight": ("head.weight",)}
    for i in layers:
        b = f"blocks.{i}"
        for name in ("ln1", "ln2", "attn.proj", "mlp.0", "mlp.2"):
            _param(key_map, f"{b}.{name}", f"{b}.{name}")
        for n in ("weight", "bias"):
            key_map[f"{b}.attn.qkv.{n}"] = tuple(f"{b}.attn.{x}.{n}" for x in ("query", "key", "value"))

    def tokens(w: torch.Tensor) -> torch.Tensor:  # target codes, then the conditioning codes: one shared table
        return torch.cat([w, w])

    def positions(p: torch.Tensor) -> torch.Tensor:
        p = p[:, : 2 * length]
        return torch.cat([p, p.new_zeros(1, 2 * length - p.shape[1], p.shape[2])], dim=1)

    used = _fill(gpt, state, key_map, pre, path, "the transformer", {"tok_emb.weight": tokens, "pos_emb": positions})
    for i in layers:  # taming's causal masks: plain lower triangles unless n_unmasked > 0
        key = f"{pre}blocks.{i}.attn.mask"
        if key in state:
            mask = state[key]
            causal = mask.dim() == 4 and torch.equal(mask[0, 0] != 0, torch.ones_like(mask[0, 0]).bool().tril())
            if not causal:
                raise CheckpointError(f"{path}: {key} is not a causal mask (n_unmasked > 0?); cannot be expressed")
            used.add(key)
    return gpt, used


def _convert_net2net(
    state: Mapping[str, torch.Tensor], path: Path, params: dict[str, Any] | None, where: str,
    resolution: int | None, n_head: int | None, notes: list[str],
) -> dict[str, torch.nn.Module]:  # fmt: skip
    gpt_params = _gpt_params(params, where)
    _check_cond_stage(state, path)
    first = {k.removeprefix("first_stage_model."): v for k, v in state.items() if k.startswith("first_stage_model.")}
    if params is not None:
        fs = params.get("first_stage_config")
        if not isinstance(fs, Mapping) or not isinstance(fs.get("params"), Mapping):
            raise ConfigError(f"{where}: first_stage_config.params is missing")
        if fs.get("target", VQ_TARGET) != VQ_TARGET:
            raise ConfigError(f"{where}: first stage {fs.get('target')} is not {VQ_TARGET}")
        cfg, _ = vq_config_from_params(fs["params"], f"{where}: first_stage_config")
        if resolution is not None and resolution != cfg.resolution:
            raise ConfigError(f"--resolution {resolution} contradicts {where} (ddconfig.resolution {cfg.resolution})")
    else:
        cfg, inferred = infer_vq_config(first, path, resolution)
        notes.extend(inferred)
    vq, used_first = convert_vqmodel(first, cfg, path)
    losses = sorted({k.split(".")[1] for k in first if k.startswith("loss.")})
    used_first |= {k for k in first if k.startswith("loss.")}
    if losses:
        notes.append("skipped first_stage_model.loss.* (training losses; the prior's first stage is frozen)")
    _refuse_unknown(first, "", used_first, path, "taming's VQModel (first_stage_model)")
    gpt, used = convert_transformer(state, vq, gpt_params, path, n_head, notes)
    used |= {k for k in state if k.startswith(("first_stage_model.", "cond_stage_model."))}
    _refuse_unknown(state, "", used, path, "taming's Net2NetTransformer")
    return {"gpt": gpt, "vqgan": vq}


# --- the command ---------------------------------------------------------------------------------------------


def import_taming(
    checkpoint: str | Path,
    output: str | Path,
    config: str | Path | None = None,
    resolution: int | None = None,
    n_head: int | None = None,
    discriminator: bool = True,
    overwrite: bool = False,
) -> ImportResult:
    """Convert a taming checkpoint into a model folder at ``output`` (written atomically; an existing folder is
    replaced only when it is an earlier output of this command and ``overwrite`` is set)."""
    path, output = Path(checkpoint), Path(output)
    check_output_dir(output, PRODUCER, overwrite)  # before reading gigabytes, not after
    params, where, target = None, "", ""
    if config is not None:
        where = str(config)
        target, params = _model_section(load_file(config), where)
    state, notes = read_checkpoint(path)
    is_net2net = any(k.startswith("transformer.") for k in state)
    if params is not None:
        expect = NET2NET_TARGET if is_net2net else VQ_TARGET
        if target and target != expect:
            raise ConfigError(f"{where}: model.target is {target}; the checkpoint holds a {expect.rsplit('.', 1)[1]}"
                              f" ({'transformer.*' if is_net2net else 'encoder.*'} keys); only {VQ_TARGET} and "
                              f"{NET2NET_TARGET} can be imported")  # fmt: skip
    if is_net2net:
        models = _convert_net2net(state, path, params, where, resolution, n_head, notes)
        kind = "transformer"
    elif "encoder.conv_in.weight" in state:
        models = _convert_first_stage(state, path, params, where, resolution, discriminator, notes)
        kind = "vqgan"
    else:
        shown = ", ".join(sorted(state)[:3]) or "nothing"
        raise CheckpointError(f"{path} is neither a taming VQModel (encoder.*) nor a Net2NetTransformer "
                              f"(transformer.*) checkpoint (it has {shown})")  # fmt: skip
    record = {
        "producer": PRODUCER, "source": path.name, "kind": kind, "config": Path(config).name if config else None,
        "models": {name: type(m).__name__ for name, m in models.items()}, "notes": notes,
        "configs": {name: to_dict(m.config) for name, m in models.items()},
    }  # fmt: skip
    _write_models(output, models, record, overwrite)
    return ImportResult(output, kind, tuple(models), notes)


def _write_models(output: Path, models: Mapping[str, Any], record: dict[str, Any], overwrite: bool) -> None:
    """``output/<name>/`` (each a model folder) + ``import.json``, atomically, under a manifest naming
    :data:`PRODUCER` (gencore's output rule: a later ``--overwrite`` recognises it)."""
    with atomic_dir(output, overwrite, PRODUCER) as tmp:
        for name, model in models.items():
            model.save_pretrained(tmp / name)
        atomic_write_text(tmp / "import.json", json.dumps(record, indent=1) + "\n")
