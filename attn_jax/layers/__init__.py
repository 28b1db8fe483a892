"""Flax linen modules that own attention parameters."""
