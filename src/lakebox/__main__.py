"""``python -m lakebox`` runs the CLI."""

from lakebox.cli import main

main()
