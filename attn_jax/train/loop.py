"""The training loop: ``train_and_evaluate(config, workdir)``, task-agnostic, readable top to bottom."""

from __future__ import annotations

import contextlib
import logging
import math
import pathlib
import signal
import time
from collections.abc import Iterator

import jax
import ml_collections
from tqdm import tqdm

from attn_jax.errors import UserError
from attn_jax.tasks import build_task
from attn_jax.tasks.base import Task
from attn_jax.train import metrics_io
from attn_jax.train.checkpoints import Checkpointer
from attn_jax.train.parallel import make_runner

_LOG = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def evaluate(task: Task, runner, state, step: int) -> dict[str, float]:
    """Metrics over one pass of the task's eval split, plus the task's extras (e.g. decoded BLEU)."""
    totals = None
    for batch in task.eval_iterator():
        totals = metrics_io.add_metrics(totals, runner.eval_step(state, batch))
    metrics = metrics_io.reduce_metrics(jax.device_get(totals))
    return metrics | task.eval_extras(runner.host_state(state).params, metrics, step)


@contextlib.contextmanager
def _sigterm_requests() -> Iterator[list[bool]]:
    """While active, SIGTERM (a preemption notice) sets a flag instead of killing the process."""
    requested = [False]
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum, frame):
        _LOG.warning("SIGTERM received: saving a checkpoint and stopping.")
        requested[0] = True

    signal.signal(signal.SIGTERM, handler)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGTERM, previous)


def _checkpointer(config: ml_collections.ConfigDict, task: Task, workdir: pathlib.Path) -> Checkpointer:
    return Checkpointer(
        workdir / "checkpoints",
        max_to_keep=config.train.keep_checkpoints,
        best_metric=task.headline_metric,
        higher_is_better=task.higher_is_better,
    )


def _check_finite(loss: float, step: int, checkpoints: Checkpointer) -> None:
    if not math.isfinite(loss):
        checkpoints.close()
        raise NonFiniteLossError(
            f"Training loss is {loss} at step {step}; stopping. The last checkpoint "
            f"(step {checkpoints.latest_step()}) is intact. Lower the learning rate or check the data."
        )


def _write_attention(task: Task, runner, state, workdir: pathlib.Path, step: int) -> None:
    if jax.process_index() == 0:
        task.write_attention(runner.host_state(state).params, workdir / "attention", step)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict[str, float]:
    """Train ``config.task`` for ``config.train.steps`` steps in ``workdir``, resuming from its newest
    checkpoint if there is one; return the last eval metrics."""
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if jax.process_index() == 0:
        (workdir / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")

    task = build_task(config, workdir)
    runner = make_runner(task, config)
    init_rng, dropout_rng = jax.random.split(jax.random.key(config.seed))
    train_iter = task.train_iterator()
    checkpoints = _checkpointer(config, task, workdir)
    writer = metrics_io.MetricWriter(workdir)
    restored = checkpoints.restore_latest(runner.abstract_state(), train_iter)
    if restored is None:
        state, first_step = runner.init_state(init_rng), 1
    else:
        state, dropout_rng = runner.device_state(restored.state), restored.rng
        first_step = restored.step + 1
        writer.drop_after(restored.step)
        _LOG.info("Resumed from step %d", restored.step)

    steps, log_every, eval_every = config.train.steps, config.train.log_every, config.train.eval_every
    totals, examples, tokens, window_start = None, 0, 0, time.perf_counter()
    eval_metrics: dict[str, float] = {}
    progress = tqdm(
        range(first_step, steps + 1), desc="train", unit="step", initial=first_step - 1, total=steps,
        disable=jax.process_index() != 0,
    )
    with _sigterm_requests() as stop_requested:
        for step in progress:
            local_batch = next(train_iter)
            examples += len(next(iter(local_batch.values()))) * jax.process_count()
            tokens += task.tokens_in(local_batch) * jax.process_count()
            state, metrics = runner.train_step(state, local_batch, dropout_rng)
            totals = metrics_io.add_metrics(totals, metrics)

            if step % log_every == 0 or step == steps:
                train_metrics = metrics_io.reduce_metrics(jax.device_get(totals))
                _check_finite(train_metrics["loss"], step, checkpoints)
                elapsed = time.perf_counter() - window_start
                train_metrics["examples_per_sec"] = examples / elapsed
                train_metrics["tokens_per_sec"] = tokens / elapsed
                writer.write(step, "train", train_metrics)
                progress.set_postfix(
                    loss=f"{train_metrics['loss']:.4f}", ex_s=f"{train_metrics['examples_per_sec']:.0f}"
                )
                totals, examples, tokens, window_start = None, 0, 0, time.perf_counter()

            evaluated = step % eval_every == 0 or step == steps
            if evaluated:
                eval_metrics = evaluate(task, runner, state, step)
                writer.write(step, "eval", eval_metrics)
                _write_attention(task, runner, state, workdir, step)
                summary = " ".join(f"{k}={v:.4f}" for k, v in sorted(eval_metrics.items()))
                progress.write(f"eval step {step}: {summary}")

            preempted = stop_requested[0] or checkpoints.reached_preemption(step)
            if step % config.train.checkpoint_every == 0 or step == steps or preempted:
                # Non-finite parameters give a non-finite loss at once: never save them.
                _check_finite(metrics_io.reduce_metrics(jax.device_get(metrics))["loss"], step, checkpoints)
                checkpoints.save(
                    step, runner.host_state(state), dropout_rng, train_iter,
                    metrics=eval_metrics if evaluated else None,
                )
            if preempted:
                _LOG.warning("Stopped at step %d after saving; run the same command to resume.", step)
                break
    checkpoints.close()
    writer.close()
    return eval_metrics


def _restore_best(config: ml_collections.ConfigDict, workdir: pathlib.Path):
    """The task, its runner and the best (else newest) checkpoint of ``workdir``."""
    if not (workdir / "checkpoints").is_dir():
        raise UserError(f"No checkpoint in {workdir / 'checkpoints'}; train first (--mode=train).")
    task = build_task(config, workdir)
    runner = make_runner(task, config)
    with _checkpointer(config, task, workdir) as checkpoints:
        restored = checkpoints.restore_best(runner.abstract_state())
    if restored is None:
        raise UserError(f"No checkpoint in {workdir / 'checkpoints'}; train first (--mode=train).")
    return task, runner, restored


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict[str, float]:
    """``--mode=eval``: restore the best (else newest) checkpoint and evaluate it."""
    workdir = pathlib.Path(workdir)
    task, runner, restored = _restore_best(config, workdir)
    state = runner.device_state(restored.state)
    metrics = evaluate(task, runner, state, restored.step)
    metrics_io.MetricWriter(workdir).write(restored.step, "eval", metrics)
    _write_attention(task, runner, state, workdir, restored.step)
    return metrics


def predict(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, text: str) -> str:
    """``--mode=predict``: the best checkpoint's prediction for ``text``, as printable lines."""
    task, _, restored = _restore_best(config, pathlib.Path(workdir))
    return task.predict(restored.state.params, text)
