"""The step-function contract shared by every decoder, and the check that a cache fits it.

A decoder never imports a model: it calls ``step_fn(tokens, cache) -> (logits, cache)`` once per output
position. ``tokens [batch]`` int32 holds the previous token of each row (BOS on the first call),
``logits [batch, vocab]`` scores the next token, and ``cache`` is any pytree the model needs to carry
between positions: a Flax ``'cache'`` collection (per-layer ``cached_key [batch, max_len, kv_heads,
head_dim]`` plus a scalar ``cache_index``), an RNN carry ``[batch, hidden]``, encoder memory
``[batch, src_len, features]``, coverage ``[batch, src_len]``...

Leaves with a leading batch axis are per-row state; rank-0 leaves (such as ``cache_index``) are shared by
all rows, and decoders pass them through untouched: never tiled, never gathered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array

Cache = Any  # any pytree of arrays
StepFn = Callable[[Array, Cache], tuple[Array, Cache]]


def is_per_row(leaf: Any) -> bool:
    """Whether a cache leaf carries a leading batch axis (rank >= 1) rather than shared state (rank 0)."""
    return jnp.ndim(leaf) > 0


def check_cache(cache: Cache, batch_size: int) -> None:
    """Raise ``ValueError`` unless every non-scalar leaf of ``cache`` has leading axis ``batch_size``."""
    leaves = jax.tree_util.tree_leaves_with_path(cache)
    for path, leaf in leaves:
        if is_per_row(leaf) and jnp.shape(leaf)[0] != batch_size:
            name = jax.tree_util.keystr(path) or "cache"
            raise ValueError(
                f"cache leaf {name} has shape {jnp.shape(leaf)}, whose leading axis is not batch_size="
                f"{batch_size}; per-row leaves need a leading batch axis and shared ones must be scalars."
            )
