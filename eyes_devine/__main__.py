"""``python -m eyes_devine``: the same as the ``eyes-devine`` command."""

from eyes_devine.cli import main

if __name__ == "__main__":  # a capture worker starts from this module too (multiprocessing's spawn)
    main()
