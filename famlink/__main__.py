"""``python -m famlink``: the same as the ``famlink`` command."""

from famlink.cli import main

main()
