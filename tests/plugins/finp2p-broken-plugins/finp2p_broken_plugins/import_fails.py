"""Fails while importing, as a plugin with a missing dependency would."""

import finp2p_missing_dependency  # type: ignore[import-not-found]  # noqa: F401
