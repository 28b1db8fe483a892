"""How a training step runs on the devices: ``jit`` over a named mesh, or ``pmap`` data parallelism.

Both runners take and return the same things (a plain, unreplicated ``TrainState`` for checkpoints, host
batches of this process's rows, metric sums), so the loop does not know which one it drives. With the same
data and no dropout they compute the same losses (the ``pmap`` path exists for older runtimes).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
from flax import jax_utils
from flax.training import train_state

from attn_jax.errors import UserError
from attn_jax.tasks.base import Batch, Metrics, Task
from attn_jax.train import sharding
from attn_jax.train.optimizer import build_optimizer


def _train_step(state, batch, rng, *, task: Task, axis_name: str | None = None):
    """One optimizer step; with ``axis_name`` the gradients and metrics are combined across devices."""
    step_rng = jax.random.fold_in(rng, state.step)
    grad_fn = jax.value_and_grad(task.loss_and_metrics, has_aux=True)
    (_, metrics), grads = grad_fn(state.params, batch, step_rng)
    if axis_name is not None:
        grads = jax.lax.pmean(grads, axis_name)
        metrics = jax.lax.psum(metrics, axis_name)
    return state.apply_gradients(grads=grads), metrics


def _eval_step(params, batch, *, task: Task, axis_name: str | None = None) -> Metrics:
    metrics = task.loss_and_metrics(params, batch, None)[1]
    return metrics if axis_name is None else jax.lax.psum(metrics, axis_name)


class JitRunner:
    """``jax.jit`` over a ``data x fsdp x tensor`` mesh; parameters sharded by logical-axis rules."""

    def __init__(self, task: Task, config: ml_collections.ConfigDict):
        self.task = task
        self.mesh = sharding.make_mesh(config.mesh)
        self._rules = sharding.logical_rules(config)
        self._tx = build_optimizer(config.train)
        self._abstract = jax.eval_shape(self._init, jax.random.key(0))
        self.state_sharding = sharding.tree_sharding(self._abstract, self.mesh, self._rules)
        batch_sharding = sharding.batch_sharding(self.mesh)
        self._train = jax.jit(
            functools.partial(_train_step, task=task),
            in_shardings=(self.state_sharding, batch_sharding, None),
            out_shardings=(self.state_sharding, None),
            donate_argnums=0,
        )
        self._eval = jax.jit(functools.partial(_eval_step, task=task))

    def _init(self, rng):
        return train_state.TrainState.create(
            apply_fn=self.task.model.apply, params=self.task.init_params(rng), tx=self._tx
        )

    def init_state(self, rng: jax.Array) -> train_state.TrainState:
        """Parameters and optimizer state created directly in their shardings."""
        return jax.jit(self._init, out_shardings=self.state_sharding)(rng)

    def abstract_state(self) -> Any:
        """Shapes, dtypes and shardings of the state: the target a checkpoint is restored into."""
        def with_sharding(x, s):
            if isinstance(x, nn.meta.AxisMetadata):  # keep the logical-axis box around the target
                value = x.unbox()
                return x.replace_boxed(jax.ShapeDtypeStruct(value.shape, value.dtype, sharding=s))
            return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s)

        is_box = lambda x: isinstance(x, nn.meta.AxisMetadata)
        return jax.tree.map(with_sharding, self._abstract, self.state_sharding, is_leaf=is_box)

    def train_step(self, state, local_batch: Batch, rng: jax.Array):
        return self._train(state, sharding.put_batch(local_batch, self.mesh), rng)

    def eval_step(self, state, local_batch: Batch) -> Metrics:
        return self._eval(state.params, sharding.put_batch(local_batch, self.mesh))

    def host_state(self, state):
        return state

    def device_state(self, state):
        return state


class PmapRunner:
    """Plain data parallelism with ``jax.pmap``: the state replicated, each local device gets rows."""

    def __init__(self, task: Task, config: ml_collections.ConfigDict):
        self.task = task
        self._tx = build_optimizer(config.train)
        self._devices = jax.local_device_count()
        if config.train.batch_size % (self._devices * jax.process_count()):
            raise UserError(
                f"train.batch_size {config.train.batch_size} must divide by the "
                f"{self._devices * jax.process_count()} devices for parallelism='pmap'."
            )
        self._train = jax.pmap(
            functools.partial(_train_step, task=task, axis_name="batch"),
            axis_name="batch",
            in_axes=(0, 0, None),
            donate_argnums=0,
        )
        self._eval = jax.pmap(functools.partial(_eval_step, task=task, axis_name="batch"), axis_name="batch")

    def _init(self, rng):
        params = nn.meta.unbox(self.task.init_params(rng))
        return train_state.TrainState.create(apply_fn=self.task.model.apply, params=params, tx=self._tx)

    def init_state(self, rng: jax.Array) -> train_state.TrainState:
        return jax_utils.replicate(jax.jit(self._init)(rng))

    def abstract_state(self) -> Any:
        return jax.eval_shape(self._init, jax.random.key(0))

    def _split(self, local_batch: Batch) -> Batch:
        # [rows, ...] -> [devices, rows / devices, ...]
        return jax.tree.map(lambda x: jnp.reshape(x, (self._devices, -1, *x.shape[1:])), local_batch)

    def train_step(self, state, local_batch: Batch, rng: jax.Array):
        state, metrics = self._train(state, self._split(local_batch), rng)
        return state, jax.tree.map(lambda x: x[0], metrics)

    def eval_step(self, state, local_batch: Batch) -> Metrics:
        return jax.tree.map(lambda x: x[0], self._eval(state.params, self._split(local_batch)))

    def host_state(self, state):
        """The single copy of a replicated state (what checkpoints hold)."""
        return jax_utils.unreplicate(state)

    def device_state(self, state):
        return jax_utils.replicate(state)


def make_runner(task: Task, config: ml_collections.ConfigDict) -> JitRunner | PmapRunner:
    runners = {"jit": JitRunner, "pmap": PmapRunner}
    if config.parallelism not in runners:
        raise UserError(f"Unknown parallelism {config.parallelism!r}; valid: {', '.join(runners)}.")
    return runners[config.parallelism](task, config)
