"""A FinP2P network node."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("finp2p")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

from finp2p.hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]
