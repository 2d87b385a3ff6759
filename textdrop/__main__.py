"""``python -m textdrop``: the same as the ``textdrop`` command."""

from textdrop.cli import main

main()
