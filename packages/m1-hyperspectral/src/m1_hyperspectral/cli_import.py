"""``m1-hyperspectral import-original``: an M1 trained with dpkingma/nips14-ssl -> a model folder of this package.

Import rule (tests/test_imports.py): only click, the standard library and light gencore modules at the top; the
converter (numpy, torch) is imported by the command body.
"""

from __future__ import annotations

import click

from gencore.cli import Command


@click.command("import-original", cls=Command)
@click.argument("source", type=click.Path())
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True,
              help="Model folder to write (config.json + model.safetensors).")  # fmt: skip
@click.option("--activation", type=click.Choice(["softplus", "tanh", "relu", "rectlin"]), default="softplus",
              show_default=True,
              help="The original's nonlinear_q = nonlinear_p (not stored in its files; rectlin = relu).")  # fmt: skip
@click.option("--last", is_flag=True, help="With a run folder: v/w (last) instead of v_best/w_best.")
@click.option("--normalization", type=click.Path(dir_okay=False), default=None,
              help=".npz with band_min and band_range: the per-band scaling the original's inputs had "
                   "[default: none, inputs are the original's x in [0, 1]].")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace an earlier output of import-original at OUTPUT.")
def import_original(source: str, output: str, activation: str, last: bool, normalization: str | None,
                    overwrite: bool) -> None:  # fmt: skip
    """Convert an M1 of dpkingma/nips14-ssl (GPUVAE_Z_X / VAE_Z_X) into a model folder.

    SOURCE is a run folder of the original (v_best/w_best.ndict.tar.gz), one of its .ndict.tar.gz files (the
    other is found beside it), or an .npz with keys v.<name> and w.<name>. Pickle files are refused. The model
    computes the original's equations (log-variances unclamped); `extract`, `sample` and M1.from_pretrained read it.
    """
    from m1_hyperspectral.original import import_original as run

    model = run(source, output, activation, last, normalization, overwrite)
    c = model.config
    click.echo(
        f"wrote {output}: M1 with {c.bands} bands, hidden {c.hidden}, {c.latent} latent units, {c.activation}, "
        f"{c.likelihood} likelihood"
    )
