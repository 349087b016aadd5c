"""The `eyes-devine` command: flags -> Settings -> the app.  click lives here and nowhere else.

Exit codes: 0 success, 1 a runtime failure (capture, file, daemon, database), 2
bad input (a flag, a variable, an interface name, a profile, a filter).
"""

from eyes_devine.cli import capture, database, stored  # noqa: F401  (the commands join the group)
from eyes_devine.cli.group import main

__all__ = ["main"]
