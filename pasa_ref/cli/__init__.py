"""The `pasa` command line: one module per subcommand in this package, each defining
`command` (a click.Command). A module named `foo_bar` is the subcommand `foo-bar`; modules are
imported only when their subcommand runs, so `pasa --help` stays fast."""

from __future__ import annotations

import importlib
import pkgutil

import click

from pasa_ref import __version__


def _subcommand_modules() -> dict[str, str]:
    return {
        info.name.replace("_", "-"): info.name
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    }


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_subcommand_modules())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module = _subcommand_modules().get(name)
        if module is None:
            return None
        return importlib.import_module(f"{__name__}.{module}").command


@click.group(cls=_LazyGroup)
@click.version_option(__version__, prog_name="pasa-ref")
def main() -> None:
    """pasa-ref: verify fp16/bf16 attention kernels against the PASA spec."""
