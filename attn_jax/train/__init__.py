"""Task-agnostic trainer: loop, runners (jit / pmap), checkpoints, optimizer, metric output."""

from attn_jax.train.loop import NonFiniteLossError, evaluate_checkpoint, predict, train_and_evaluate
