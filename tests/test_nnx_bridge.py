"""attn_jax modules used from Flax NNX through the linen bridge give the linen outputs."""

import flax
import jax
import numpy as np
import pytest
from flax import nnx

from attn_jax.layers.multi_head import MultiHeadAttention


@pytest.fixture
def no_eager_sharding():
    # Logical axis names are sharding metadata; outside a mesh NNX must not try to apply them.
    before = flax.config.flax_always_shard_variable
    flax.config.update("flax_always_shard_variable", False)
    yield
    flax.config.update("flax_always_shard_variable", before)


def test_to_nnx_matches_linen(no_eager_sharding):
    x = jax.random.normal(jax.random.key(0), (2, 6, 16))
    linen_module = MultiHeadAttention(num_heads=4, num_kv_heads=2, position="rotary", causal=True)
    model = nnx.bridge.ToNNX(linen_module, rngs=nnx.Rngs(0))
    nnx.bridge.lazy_init(model, x)
    got = model(x)

    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    want = linen_module.apply({"params": params}, x)
    np.testing.assert_allclose(got, want, atol=1e-6)
    # And a jitted NNX call agrees.
    np.testing.assert_allclose(nnx.jit(lambda m, x: m(x))(model, x), want, atol=1e-6)
