"""attn_jax: every kind of attention as JAX functions and Flax modules, with a training stack."""

__version__ = "0.1.0"
