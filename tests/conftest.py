"""Shared test settings: float32 matmuls at full precision so references compare tightly."""

import os

import jax
import pytest
from hypothesis import settings

jax.config.update("jax_default_matmul_precision", "highest")

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    return jax.random.key(0)
