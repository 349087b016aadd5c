"""eyes-devine: a Docker-aware HTTP traffic monitor for container hosts."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("eyes-devine")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0+unknown"
