"""The training loop: ``train_and_evaluate(config, workdir)``, task-agnostic, readable top to bottom."""

from __future__ import annotations

import functools
import logging
import math
import pathlib
import time
from typing import Any

import jax
import ml_collections
from flax.training import train_state
from tqdm import tqdm

from attn_jax.tasks import build_task
from attn_jax.tasks.base import Task
from attn_jax.train import metrics_io, sharding
from attn_jax.train.optimizer import build_optimizer

_LOG = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def _create_state(task: Task, config, mesh, rules, rng) -> tuple[train_state.TrainState, Any]:
    """Initialise parameters and optimizer state directly into their shardings."""
    tx = build_optimizer(config.train)

    def init(rng):
        return train_state.TrainState.create(apply_fn=task.model.apply, params=task.init_params(rng), tx=tx)

    abstract = jax.eval_shape(init, rng)
    state_sharding = sharding.tree_sharding(abstract, mesh, rules)
    state = jax.jit(init, out_shardings=state_sharding)(rng)
    return state, state_sharding


def _train_step(state, batch, rng, *, task: Task):
    step_rng = jax.random.fold_in(rng, state.step)
    grad_fn = jax.value_and_grad(task.loss_and_metrics, has_aux=True)
    (loss, metrics), grads = grad_fn(state.params, batch, step_rng)
    return state.apply_gradients(grads=grads), loss, metrics


def _evaluate(task: Task, eval_step, state, mesh) -> dict[str, float]:
    totals = None
    for batch in task.eval_iterator():
        totals = metrics_io.add_metrics(totals, eval_step(state.params, sharding.put_batch(batch, mesh)))
    return metrics_io.reduce_metrics(jax.device_get(totals))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict[str, float]:
    """Train ``config.task`` for ``config.train.steps`` steps in ``workdir``; return final eval metrics."""
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if jax.process_index() == 0:
        (workdir / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")

    task = build_task(config, workdir)
    mesh = sharding.make_mesh(config.mesh)
    rules = sharding.logical_rules(config)
    init_rng, dropout_rng = jax.random.split(jax.random.key(config.seed))
    state, state_sharding = _create_state(task, config, mesh, rules, init_rng)
    batch_sharding = sharding.batch_sharding(mesh)
    train_step = jax.jit(
        functools.partial(_train_step, task=task),
        in_shardings=(state_sharding, batch_sharding, None),
        out_shardings=(state_sharding, None, None),
        donate_argnums=0,
    )
    eval_step = jax.jit(lambda params, batch: task.loss_and_metrics(params, batch, None)[1])
    writer = metrics_io.MetricWriter(workdir)
    train_iter = task.train_iterator()
    steps, log_every, eval_every = config.train.steps, config.train.log_every, config.train.eval_every

    totals, examples, tokens, window_start = None, 0, 0, time.perf_counter()
    eval_metrics: dict[str, float] = {}
    progress = tqdm(range(1, steps + 1), desc="train", unit="step", disable=jax.process_index() != 0)
    for step in progress:
        local_batch = next(train_iter)
        examples += len(next(iter(local_batch.values()))) * jax.process_count()
        tokens += task.tokens_in(local_batch) * jax.process_count()
        state, _, metrics = train_step(state, sharding.put_batch(local_batch, mesh), dropout_rng)
        totals = metrics_io.add_metrics(totals, metrics)

        if step % log_every == 0 or step == steps:
            train_metrics = metrics_io.reduce_metrics(jax.device_get(totals))
            if not math.isfinite(train_metrics["loss"]):
                raise NonFiniteLossError(
                    f"Training loss is {train_metrics['loss']} at step {step} (averaged since the "
                    f"last log); stopping. Lower the learning rate or check the data."
                )
            elapsed = time.perf_counter() - window_start
            train_metrics["examples_per_sec"] = examples / elapsed
            train_metrics["tokens_per_sec"] = tokens / elapsed
            writer.write(step, "train", train_metrics)
            progress.set_postfix(
                loss=f"{train_metrics['loss']:.4f}", ex_s=f"{train_metrics['examples_per_sec']:.0f}"
            )
            totals, examples, tokens, window_start = None, 0, 0, time.perf_counter()

        if step % eval_every == 0 or step == steps:
            eval_metrics = _evaluate(task, eval_step, state, mesh)
            writer.write(step, "eval", eval_metrics)
            summary = " ".join(f"{k}={v:.4f}" for k, v in sorted(eval_metrics.items()))
            progress.write(f"eval step {step}: {summary}")
    writer.close()
    _LOG.info("final %s = %.4f", task.headline_metric, eval_metrics[task.headline_metric])
    return eval_metrics
