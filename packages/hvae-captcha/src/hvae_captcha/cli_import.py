"""``hvae-captcha import-original``: an HVAE trained with Anzarts/ProyectoMSD7203 -> a model folder of this package.

Import rule (as cli.py; tests/test_imports.py): at the top only click, the standard library and light gencore
modules; torch and the converter are imported inside the command body.
"""

from __future__ import annotations

import click

from gencore.cli import Command


@click.command("import-original", cls=Command)
@click.argument("source", type=click.Path(dir_okay=False), metavar="PT")
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True, metavar="MODEL_DIR",
              help="Model folder to write (config.json, model.safetensors, run_config.json).")  # fmt: skip
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Describe an original built with other arguments (e.g. model.latent_dim=256, model.inner_config=...)"
                   " on top of --preset original.")  # fmt: skip
@click.option("--overwrite", is_flag=True,
              help="Replace an earlier import-original output at MODEL_DIR (a folder holding anything else is "
                   "refused).")  # fmt: skip
def import_original(source: str, output: str, overrides: tuple[str, ...], overwrite: bool) -> None:
    """Convert PT, the state_dict the original saves (HVAE.save: torch.save(model.state_dict(), ...)), into
    MODEL_DIR, which sample, reconstruct and evaluate read.

    Read without unpickling code (torch's weights-only reader); a whole pickled module is refused. An unknown key,
    a missing key or a tensor of another shape is a one-line error naming the key.
    """
    from hvae_captcha.original import import_original as run

    model = run(source, output, overrides, overwrite)
    c = model.config
    total = sum(p.numel() for p in model.parameters())
    click.echo(f"wrote {output}: original HVAE, {c.channels}×{c.height}×{c.width}, {c.levels} latent levels of "
               f"{c.latent_dim}, {total:,} parameters")  # fmt: skip
