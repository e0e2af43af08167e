"""``vqgan-negatives import-taming``: a CompVis/taming-transformers checkpoint -> a model folder of this package.

Import rule (as cli.py; tests/test_imports.py): at the top only click, the standard library and light gencore
modules; torch and the converter are imported inside the command body.
"""

from __future__ import annotations

import click

from gencore.cli import Command


@click.command("import-taming", cls=Command)
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None, metavar="YAML",
              help="taming's config of the model (model.params: ddconfig, embed_dim, n_embed, transformer_config "
                   "...) [default: inferred from the weights where possible].")  # fmt: skip
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True, metavar="MODEL_DIR",
              help="Model folder to write: vqgan/ (+ discriminator/) for a VQModel, gpt/ + vqgan/ for a "
                   "Net2NetTransformer, as train-vqgan / train-transformer export them.")  # fmt: skip
@click.option("--resolution", type=click.IntRange(min=1), default=None,
              help="Image side the first stage was trained at (not in the weights; needed without --config).")
@click.option("--n-head", type=click.IntRange(min=1), default=None,
              help="Attention heads of the transformer (not in the weights; needed without --config).")
@click.option("--no-discriminator", is_flag=True,
              help="Leave the checkpoint's discriminator (loss.discriminator.*) out.")  # fmt: skip
@click.option("--overwrite", is_flag=True,
              help="Replace an earlier import-taming output at MODEL_DIR (a folder holding anything else is refused).")
def import_taming(checkpoint: str, config: str | None, output: str, resolution: int | None, n_head: int | None,
                  no_discriminator: bool, overwrite: bool) -> None:  # fmt: skip
    """Convert CHECKPOINT (taming's VQModel or Net2NetTransformer: a Lightning .ckpt or a state dict) into
    MODEL_DIR, loadable by sample/make-negatives (a transformer) or as a first stage (--vqgan MODEL_DIR).

    Read without unpickling code (torch's weights-only reader). An unknown key, a missing key or a tensor of
    another shape is a one-line error naming the key; a transformer whose conditioning stage is not its first
    stage is refused (this package's prior reads the first stage's codes of the conditioning image).
    """
    from vqgan_negatives.taming_import import import_taming as convert

    result = convert(checkpoint, output, config, resolution, n_head, not no_discriminator, overwrite)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {result.output} ({', '.join(result.models)}) from {checkpoint}")
