"""Plugins that ship with the core, registered before any installed plugin and on the same footing."""
