"""`python -m pasa_ref ...` runs the `pasa` command line (e.g. from a source checkout)."""

from pasa_ref.cli import main

main(prog_name="pasa")
