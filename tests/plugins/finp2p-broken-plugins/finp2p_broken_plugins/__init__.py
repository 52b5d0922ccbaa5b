"""Test-only broken plugins."""
