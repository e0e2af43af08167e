"""Import a model trained by the original project (Anzarts/ProyectoMSD7203) into a model folder of this package.

The original saves ``torch.save(model.state_dict(), "HVAE.pt")``; its layout, for the configuration it was built
with (``--preset original`` expresses its defaults), is:

========================================  ====================================================================
original key (module)                     here
========================================  ====================================================================
``encoder.0.{n}``: outer layers, flat      ``outer.layers.{i}.0`` (conv), ``.1`` (batch norm); conv = [conv, act],
                                           conv-bn = [conv, bn, act], pool = [pool] in the flat index n
``encoder.0.{last}.1``, ``.3``             ``enc_fc.0.1``, ``.3`` (flatten -> 2k -> 2k)
``encoder.{1+i}.0.0``, ``.2``              ``enc_in.{i}.0``, ``.2`` (k -> 2k -> H·W of inner_size)
``encoder.{1+i}.1.block.{j}.0/.1``         ``enc_inner.{i}.layers.{j}.0/.1``; a skip-down's ``Linear(c+s, c)``
                                           becomes the 1×1 convolution ``enc_inner.{i}.layers.{j}`` (weight
                                           reshaped to (c, c+s, 1, 1), same order [x, skip])
``encoder.{1+i}.2.1``, ``.3``              ``enc_fc.{i+1}.1``, ``.3``
``mu_layers.{l}``, ``lv_layers.{l}``       ``q_heads.{l}.mu``, ``.logvar`` (l < L)
``decoder.{l}.*`` (l < L-1)                generation block i = L-2-l: ``dec_in.{i}``, ``dec_inner.{i}``,
                                           ``dec_fc.{i}`` as in the encoder
``mu_layers.{L+l}``, ``lv_layers.{L+l}``   ``p_heads.{L-2-l}.mu``, ``.logvar``
``decoder.{L-1}.0.0``, ``.2``              ``out_in.0``, ``.2``
``decoder.{L-1}.{n}`` (mirrored outer)     ``out_block.layers.{k}.0/.1``; the image's transposed convolution
                                           (followed by a sigmoid there) is the bare ``out_block.layers.{k}``
========================================  ====================================================================

Spectral norm (``torch.nn.utils.spectral_norm``: ``weight_orig``, ``weight_u``, ``weight_v``) maps onto the
parametrization's ``parametrizations.weight.original``, ``.0._u``, ``.0._v``: in eval mode both divide the weight by
u·Wv with the stored u, v. The original normalises the inference path less its skip-down mixes, plus the fully
connected layers around each generation inner block; the converted model sets
``model.spectral_norm_scope = "original"`` for that, ``model.logvar_bound = 0`` (the original does not clamp
log-variances), ``model.input_range = "unit"`` (its inputs were ToTensor's [0, 1]) and
``model.output_upsample = "scale"`` (its output block upsamples ×2, then to the input size).

Not imported: a conditioned original (``projector_label``: it adds a projected character count to the top
latent, a different conditioning from this package's); a whole pickled module (``torch.save(model)``), which
cannot be read without running its code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

from gencore.checkpoint import atomic_dir, check_output_dir, load_torch_file
from gencore.config import build_config, to_dict
from gencore.errors import CheckpointError
from hvae_captcha.config import CONV_KINDS, PRESETS, HVAEConfig, ModelConfig
from hvae_captcha.model import HVAE

#: The producer named in the manifest of a folder written by :func:`import_original`.
PRODUCER = "hvae-captcha import-original"

#: The config of an imported model: the original preset plus the variants that make its layout exact.
IMPORT_OVERRIDES = [
    *PRESETS["original"], "model.conditioned=false", "model.logvar_bound=0", "model.spectral_norm_scope='original'",
    "model.input_range='unit'", "model.output_upsample='scale'",
]  # fmt: skip

RESAVE_HINT = (
    "re-save its state_dict where its class imports: model = torch.load(PATH, weights_only=False); "
    "torch.save(model.state_dict(), 'HVAE_state.pt')"
)


def import_config(overrides: list[str] | tuple[str, ...] = ()) -> HVAEConfig:
    """The run config of an imported model; ``overrides`` (``key=value``) describe an original built with other
    arguments (``model.inner_config``, ``model.latent_dim``, sizes ...)."""
    return build_config(HVAEConfig, None, overrides, base=IMPORT_OVERRIDES)


def _module_pairs(cfg: ModelConfig) -> Iterator[tuple[str, str, str]]:
    """(module here, module of the original, kind) for every layer with weights; kind is conv, linear, bn or mix."""
    n = 0
    for i, (kind, _) in enumerate(cfg.outer_config):
        if kind in CONV_KINDS:
            yield f"outer.layers.{i}.0", f"encoder.0.{n}", "conv"
            if kind.endswith("-bn"):
                yield f"outer.layers.{i}.1", f"encoder.0.{n + 1}", "bn"
        n += 3 if kind.endswith("-bn") else 2 if kind in CONV_KINDS else 1
    yield "enc_fc.0.1", f"encoder.0.{n}.1", "linear"
    yield "enc_fc.0.3", f"encoder.0.{n}.3", "linear"
    levels = cfg.levels
    for i, block in enumerate(cfg.inner_config):
        l = levels - 2 - i  # noqa: E741 - the original's decoder index of generation block i
        for here, there in ((f"enc_in.{i}", f"encoder.{1 + i}.0"), (f"dec_in.{i}", f"decoder.{l}.0")):
            yield f"{here}.0", f"{there}.0", "linear"
            yield f"{here}.2", f"{there}.2", "linear"
        for here, there in ((f"enc_inner.{i}", f"encoder.{1 + i}.1"), (f"dec_inner.{i}", f"decoder.{l}.1")):
            for j, (kind, _) in enumerate(block):
                if kind in CONV_KINDS:
                    yield f"{here}.layers.{j}.0", f"{there}.block.{j}.0", "conv"
                    if kind.endswith("-bn"):
                        yield f"{here}.layers.{j}.1", f"{there}.block.{j}.1", "bn"
                elif kind == "skip-down":
                    yield f"{here}.layers.{j}", f"{there}.block.{j}.0", "mix"
        for here, there in ((f"enc_fc.{i + 1}", f"encoder.{1 + i}.2"), (f"dec_fc.{i}", f"decoder.{l}.2")):
            yield f"{here}.1", f"{there}.1", "linear"
            yield f"{here}.3", f"{there}.3", "linear"
        yield f"p_heads.{i}.mu", f"mu_layers.{levels + l}", "linear"
        yield f"p_heads.{i}.logvar", f"lv_layers.{levels + l}", "linear"
    for level in range(levels):
        yield f"q_heads.{level}.mu", f"mu_layers.{level}", "linear"
        yield f"q_heads.{level}.logvar", f"lv_layers.{level}", "linear"
    out = f"decoder.{levels - 1}"
    yield "out_in.0", f"{out}.0.0", "linear"
    yield "out_in.2", f"{out}.0.2", "linear"
    first_conv = min(i for i, (kind, _) in enumerate(cfg.outer_config) if kind in CONV_KINDS)
    o = 1
    for k, (i, (kind, _)) in enumerate(reversed(list(enumerate(cfg.outer_config)))):
        if kind in CONV_KINDS and i == first_conv:  # [ConvTranspose2d, Sigmoid]: the bare last layer here
            yield f"out_block.layers.{k}", f"{out}.{o}", "conv"
            o += 2
        elif kind in CONV_KINDS:
            yield f"out_block.layers.{k}.0", f"{out}.{o}", "conv"
            if kind.endswith("-bn"):
                yield f"out_block.layers.{k}.1", f"{out}.{o + 1}", "bn"
            o += 3 if kind.endswith("-bn") else 2
        else:
            o += 1


def key_map(model: HVAE) -> dict[str, tuple[str, str]]:
    """{key here: (key of the original, how)}: how is ``copy`` or ``mix`` (a Linear weight -> a 1×1 convolution)."""
    modules = dict(model.named_modules())
    out: dict[str, tuple[str, str]] = {}
    for here, there, kind in _module_pairs(model.config):
        module = modules[here]
        if kind == "bn":
            for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                out[f"{here}.{name}"] = (f"{there}.{name}", "copy")
            continue
        if nn.utils.parametrize.is_parametrized(module, "weight"):
            p = f"{here}.parametrizations.weight"
            out[f"{p}.original"] = (f"{there}.weight_orig", "copy")
            out[f"{p}.0._u"] = (f"{there}.weight_u", "copy")
            out[f"{p}.0._v"] = (f"{there}.weight_v", "copy")
        else:
            out[f"{here}.weight"] = (f"{there}.weight", "mix" if kind == "mix" else "copy")
        out[f"{here}.bias"] = (f"{there}.bias", "copy")
    return out


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The original's state_dict, read without unpickling code; a whole pickled module is refused."""
    try:
        state = load_torch_file(path, weights_only=True)
    except CheckpointError as exc:
        text = str(exc)
        if "Unsupported global" in text or "Weights only load failed" in text or "GLOBAL" in text:
            raise CheckpointError(
                f"{path} holds a whole pickled module (torch.save(model)), which cannot be read without running "
                f"its code: {RESAVE_HINT}"
            ) from None
        raise
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a state_dict (a mapping of names to tensors): {RESAVE_HINT}")
    return dict(state)


def convert(state: Mapping[str, torch.Tensor], config: HVAEConfig, where: str = "") -> HVAE:
    """The model of ``config`` with the original's weights ``state``; one-line CheckpointError naming the key for
    an unknown, missing or wrongly shaped tensor."""
    conditioned = sorted(k for k in state if k.startswith("projector_label."))
    if conditioned:
        raise CheckpointError(
            f"{where}{conditioned[0]}: a conditioned original (projector_label) is not supported: its label "
            "projection added to the top latent has no counterpart here (import an unconditioned model)"
        )
    torch.manual_seed(0)  # the weights are all replaced; fixed only so a build is repeatable
    model = HVAE(config.model)
    mapping = key_map(model)
    own = model.state_dict()
    if set(mapping) != set(own):  # a layout this converter does not know: never write a half-filled model
        left = sorted(set(own) - set(mapping)) or sorted(set(mapping) - set(own))
        raise CheckpointError(f"{where}cannot map {left[0]} of this config onto the original's layout")
    wanted = {there: here for here, (there, _) in mapping.items()}
    unknown = sorted(set(state) - set(wanted))
    if unknown:
        raise CheckpointError(f"{where}unknown key {unknown[0]} (not in the original's layout for this config; "
                              f"{len(unknown)} unknown in all)")  # fmt: skip
    new = {}
    for here, (there, how) in mapping.items():
        if there not in state:
            raise CheckpointError(f"{where}missing key {there} (for {here})")
        tensor = state[there]
        target = own[here]
        if how == "mix" and tensor.ndim == 2:
            tensor = tensor[:, :, None, None]
        if tuple(tensor.shape) != tuple(target.shape):
            shape = tuple(target.shape)[:2] if how == "mix" else tuple(target.shape)
            raise CheckpointError(f"{where}{there} has shape {tuple(state[there].shape)}, expected {shape}")
        new[here] = tensor.detach().to(target.dtype).clone()
    model.load_state_dict(new, strict=True)
    return model.eval()


def import_original(
    source: str | Path, output: str | Path, overrides: list[str] | tuple[str, ...] = (), overwrite: bool = False
) -> HVAE:
    """Convert the original's state_dict at ``source`` and write the model folder ``output`` atomically
    (config.json, model.safetensors, run_config.json, imported_from.json); returns the model.

    ``output`` follows the output rule: new, empty, or an earlier output of this command with ``overwrite``;
    checked before anything is read.
    """
    from safetensors.torch import save_file

    from hvae_captcha.train import RUN_CONFIG_FILE

    check_output_dir(output, PRODUCER, overwrite)
    config = import_config(overrides)
    model = convert(read_state_dict(source), config, where=f"{source}: ")
    with atomic_dir(output, overwrite=overwrite, producer=PRODUCER) as tmp:
        state = {k: t.detach().to("cpu", copy=True).contiguous() for k, t in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps(to_dict(model.config), indent=2) + "\n")
        (tmp / RUN_CONFIG_FILE).write_text(json.dumps(to_dict(config), indent=2) + "\n")
        record = {"original": "Anzarts/ProyectoMSD7203 HVAE (state_dict)", "file": str(source),
                  "overrides": list(overrides)}  # fmt: skip
        (tmp / "imported_from.json").write_text(json.dumps(record, indent=2) + "\n")
    return model
