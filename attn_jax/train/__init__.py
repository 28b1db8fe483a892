"""Task-agnostic trainer: loop, state, sharding, optimizer, metric output."""

from attn_jax.train.loop import NonFiniteLossError, train_and_evaluate
