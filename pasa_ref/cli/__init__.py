"""The `pasa` command line: one module per subcommand, registered here."""

from __future__ import annotations

import importlib

import click

from pasa_ref import __version__

# subcommand name -> module under pasa_ref.cli that defines `command` (a click.Command)
SUBCOMMANDS: dict[str, str] = {}


class _LazyGroup(click.Group):
    """Imports a subcommand's module only when it is run, so `pasa --help` stays fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        return importlib.import_module(f"pasa_ref.cli.{SUBCOMMANDS[name]}").command


@click.group(cls=_LazyGroup)
@click.version_option(__version__, prog_name="pasa-ref")
def main() -> None:
    """pasa-ref: verify fp16/bf16 attention kernels against the PASA spec."""
