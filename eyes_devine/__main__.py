"""``python -m eyes_devine``: the same as the ``eyes-devine`` command."""

from eyes_devine.cli import main

main()
