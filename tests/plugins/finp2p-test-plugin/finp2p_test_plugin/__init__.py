"""Test-only finp2p plugin."""
