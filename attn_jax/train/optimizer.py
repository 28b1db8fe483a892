"""The optax optimizer from ``config.train``: AdamW, a warmup schedule, clipping, accumulation."""

from __future__ import annotations

import ml_collections
import optax

from attn_jax.errors import UserError


def learning_rate_schedule(train: ml_collections.ConfigDict) -> optax.Schedule:
    """Linear warmup, then cosine decay to zero (Loshchilov & Hutter, 2017) or inverse square root
    (Vaswani et al., 2017)."""
    warmup = max(int(train.warmup_steps), 1)
    peak = float(train.learning_rate)
    if train.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, max(int(train.steps), warmup + 1))
    if train.schedule == "rsqrt":
        return optax.join_schedules(
            [optax.linear_schedule(0.0, peak, warmup), lambda s: peak * (warmup / (s + warmup)) ** 0.5],
            [warmup],
        )
    raise UserError(f"Unknown learning-rate schedule {train.schedule!r}; valid: cosine, rsqrt.")


def build_optimizer(train: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """AdamW (Loshchilov & Hutter, 2019) after global-norm clipping, accumulating gradients over
    ``train.grad_accum_steps`` micro-batches when that is above 1."""
    tx = optax.chain(
        optax.clip_by_global_norm(train.grad_clip_norm),
        optax.adamw(learning_rate_schedule(train), weight_decay=train.weight_decay),
    )
    if train.get("grad_accum_steps", 1) > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=train.grad_accum_steps)
    return tx
