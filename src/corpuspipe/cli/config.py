"""``corpuspipe config show`` and ``config init``: the configuration file, printed or started."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from corpuspipe.cli.common import console, fail

config_app = typer.Typer(no_args_is_help=True, help="Show or start a configuration file.")


@config_app.command("show")
def config_show(
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file overriding the defaults."),
) -> None:
    """Print the effective configuration as commented TOML (values differing from the default say so)."""
    from corpuspipe import configdoc, preflight

    try:
        cfg = preflight.load_config(config)
    except preflight.PreflightError as exc:
        fail(str(exc))
    sys.stdout.write(configdoc.to_toml(cfg))
    sys.stdout.write(f"# config hash: {cfg.config_hash()}\n")


@config_app.command("init")
def config_init(
    path: Path = typer.Argument(Path("corpuspipe.toml"), help="Where to write the starting file."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented starting file: every key with its default and meaning, commented out."""
    from corpuspipe import configdoc
    from corpuspipe.core.io import atomic_write_text

    if path.exists() and not force:
        fail(f"{path} exists; pass --force to overwrite it")
    if path.exists() and not path.is_file():
        fail(f"not a file: {path}")
    atomic_write_text(path, configdoc.to_toml(commented_out=True))
    console.print(f"wrote {path}: uncomment and edit the keys you want, then pass --config {path}", highlight=False)
