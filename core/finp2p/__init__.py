"""A FinP2P network node."""

from finp2p.hookspecs import hookimpl

#: The version of the distribution (pyproject.toml's; a test checks they agree). A constant, so that reading it
#: costs nothing at start-up.
__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]
