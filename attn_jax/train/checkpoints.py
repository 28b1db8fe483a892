"""Checkpoints for the trainer: one Orbax ``CheckpointManager`` step per save, holding everything a resumed
run needs to continue exactly where it stopped.

Each step directory is one composite checkpoint with three items:

- ``train_state``: the flax ``TrainState`` (params, opt_state, step), as sharded arrays (``StandardSave``);
- ``meta``: JSON with the step and the RNG key (``jax.random.key_data`` as integers plus the key's impl name);
- ``data_iterator``: the grain iterator's ``get_state()``, one JSON file per process (grain's own handler).

Retention keeps the ``max_to_keep`` newest steps (whatever their metrics, so the step to resume from is never
deleted) plus the ``keep_best`` best steps by ``best_metric`` among those saved with metrics. Saves are
asynchronous: arrays are copied off the devices before ``save`` returns and written in the background; call
``wait_until_finished()`` (or ``close()``) before the process exits. Orbax coordinates the processes of a
multi-host run (the primary process writes shared files, each process writes its own array shards and its
own iterator file); every process must call every method here, in the same order.
"""

from __future__ import annotations

import logging
import math
import pathlib
from typing import Any, NamedTuple

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from orbax.checkpoint.checkpoint_managers import preservation_policy

from attn_jax.errors import UserError

_LOG = logging.getLogger(__name__)

STATE, META, DATA = "train_state", "meta", "data_iterator"


class UnreadableCheckpointError(UserError):
    """Checkpoints exist in the directory but none of them can be restored."""


class Restored(NamedTuple):
    """What a restore gives back: the train state (in the target's shardings), the RNG key and the step."""

    state: Any
    rng: jax.Array
    step: int


def _abstract(x: Any) -> Any:
    """A concrete ``jax.Array`` becomes a ``ShapeDtypeStruct`` with its sharding; anything else is kept."""
    if isinstance(x, jax.Array):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
    return x


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _all_processes_ok(ok: bool) -> bool:
    """True only when every process succeeded, so that all processes resume from the same step."""
    return bool(np.all(multihost_utils.process_allgather(np.asarray(ok))))


class Checkpointer:
    """Saves and restores train state, RNG key and data-iterator position under ``directory``.

    Args:
        directory: where the step directories go (created if missing), e.g. ``workdir / "checkpoints"``.
        max_to_keep: how many of the newest steps to keep (``None``: keep all).
        best_metric: eval metric that ranks checkpoints (``None``: keep by recency only); ``save`` must then
            be given it in ``metrics`` for the step to count as a candidate.
        higher_is_better: direction of ``best_metric`` (``accuracy``: True, ``loss``: False).
        keep_best: how many of the best steps to keep in addition to the newest ones.
        async_save: write in a background thread (Orbax ``enable_async_checkpointing``).
    """

    def __init__(
        self,
        directory: str | pathlib.Path,
        *,
        max_to_keep: int | None = 3,
        best_metric: str | None = None,
        higher_is_better: bool = False,
        keep_best: int = 1,
        async_save: bool = True,
    ):
        self.directory = pathlib.Path(directory).absolute()
        self.best_metric = best_metric
        policies: list[Any] = [preservation_policy.LatestN(n=max_to_keep)]
        best_fn = None
        if best_metric is not None:
            best_fn = lambda metrics: float(metrics[best_metric])
            policies.append(
                preservation_policy.BestN(
                    get_metric_fn=best_fn,
                    reverse=not higher_is_better,  # sorted, reversed or not; the last n are kept
                    n=keep_best,
                    # Steps without metrics are kept by LatestN while they are recent, like any other.
                    keep_checkpoints_without_metrics=False,
                )
            )
        options = ocp.CheckpointManagerOptions(
            best_fn=best_fn,  # only for best_step(); retention is the preservation policy below
            best_mode="max" if higher_is_better else "min",
            preservation_policy=preservation_policy.AnyPreservationPolicy(policies),
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=True,  # drop half-written steps left by a crash
        )
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=options,
            item_handlers={
                STATE: ocp.StandardCheckpointHandler(),
                META: ocp.JsonCheckpointHandler(),
                DATA: grain.checkpoint.CheckpointHandler(),
            },
        )
        # Unreadable steps newer than the one resumed from; deleted before the run saves past them.
        self._unreadable: set[int] = set()

    def latest_step(self) -> int | None:
        """The newest saved step (readable or not), or ``None``."""
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        """All saved steps, oldest first."""
        return sorted(self._manager.all_steps())

    def best_step(self) -> int | None:
        """The best step by ``best_metric`` among those saved with metrics (else the newest), or ``None``."""
        best = self._manager.best_step() if self.best_metric is not None else None
        return self.latest_step() if best is None else best

    def save(
        self,
        step: int,
        state: Any,
        rng: jax.Array,
        data_iterator: grain.DatasetIterator | None = None,
        *,
        metrics: dict[str, float] | None = None,
    ) -> bool:
        """Start saving ``step``; False (nothing written) when that step or a newer one is already saved.

        ``metrics`` (eval metrics of this step) rank it for ``keep_best``; they are ignored without a
        ``best_metric``. The arrays (copied to host) and the iterator position are captured before this
        returns, so training may go on at once, donating the state's buffers. Save with the iterator if the
        run will be restored with one.
        """
        for bad in sorted(s for s in self._unreadable if s >= step):
            _LOG.warning(
                "Deleting unreadable checkpoint step %d in %s before saving step %d.",
                bad,
                self.directory,
                step,
            )
            self._manager.delete(bad)
            self._unreadable.discard(bad)
        latest = self.latest_step()
        if latest is not None and latest >= step:
            return False
        if metrics is not None:
            metrics = {k: float(v) for k, v in metrics.items()}
            if self.best_metric is not None:
                if self.best_metric not in metrics:
                    raise KeyError(f"metrics {sorted(metrics)} lack best_metric {self.best_metric!r}.")
                if not math.isfinite(metrics[self.best_metric]):
                    _LOG.warning(
                        "%s = %s at step %d; saving it without metrics.",
                        self.best_metric,
                        metrics[self.best_metric],
                        step,
                    )
                    metrics = None
        meta = {
            "step": int(step),
            "rng_impl": str(jax.random.key_impl(rng)),
            "rng_key_data": np.asarray(jax.random.key_data(rng)).tolist(),
        }
        items = {STATE: ocp.args.StandardSave(state), META: ocp.args.JsonSave(meta)}
        if data_iterator is not None:
            items[DATA] = grain.checkpoint.CheckpointSave(data_iterator)
        return self._manager.save(step, args=ocp.args.Composite(**items), metrics=metrics, force=True)

    def restore_latest(
        self, target_state: Any, data_iterator: grain.DatasetIterator | None = None
    ) -> Restored | None:
        """Restore the newest readable step, or ``None`` when there is no checkpoint at all.

        ``target_state`` gives structure, dtypes and shardings: a pytree of ``jax.ShapeDtypeStruct``s with
        shardings (or of arrays, whose shardings are used). ``data_iterator`` is moved to the saved position
        with ``set_state``. An unreadable step is skipped with a warning and the previous one is tried;
        :class:`UnreadableCheckpointError` when none can be read.
        """
        steps = self.all_steps()[::-1]
        if not steps:
            return None
        restored, bad = self._restore_first_readable(steps, target_state, data_iterator)
        self._unreadable |= {s for s in bad if s > restored.step}
        return restored

    def restore_best(self, target_state: Any) -> Restored | None:
        """Restore the best step (for evaluation), else the next readable one by recency; ``None`` if none."""
        best = self.best_step()
        if best is None:
            return None
        steps = [best] + [s for s in self.all_steps()[::-1] if s != best]
        return self._restore_first_readable(steps, target_state, None)[0]

    def _restore_first_readable(
        self, steps: list[int], target_state: Any, data_iterator: grain.DatasetIterator | None
    ) -> tuple[Restored, list[int]]:
        target = jax.tree.map(_abstract, target_state)
        errors: list[str] = []
        for step in steps:
            items = {STATE: ocp.args.StandardRestore(target), META: ocp.args.JsonRestore()}
            if data_iterator is not None:
                items[DATA] = grain.checkpoint.CheckpointRestore(data_iterator)
            try:
                result = self._manager.restore(step, args=ocp.args.Composite(**items))
                meta = result[META]
                rng = jax.random.wrap_key_data(
                    np.asarray(meta["rng_key_data"], np.uint32), impl=meta["rng_impl"]
                )
                error = None
            except Exception as e:  # any failure to read counts: missing, truncated or mismatched files
                error = f"{type(e).__name__}: {e}"
            if _all_processes_ok(error is None):
                if errors:
                    _LOG.warning("Resuming from step %d of %s instead.", step, self.directory)
                return Restored(result[STATE], rng, int(meta["step"])), [int(s) for s in steps[: len(errors)]]
            error = error or "another process could not read it"
            _LOG.warning(
                "Checkpoint step %d in %s is unreadable, skipping it: %s", step, self.directory, error
            )
            errors.append(f"step {step}: {_one_line(error)}")
        raise UnreadableCheckpointError(
            f"None of the {len(steps)} checkpoints in {self.directory} can be read ("
            + "; ".join(errors)
            + "). Move that directory away to start over, or use a new workdir."
        )

    def reached_preemption(self, step: int) -> bool:
        """True on every process when a preemption notice has arrived (multi-host sync point): save now."""
        return self._manager.reached_preemption(step)

    def wait_until_finished(self) -> None:
        """Block until background saves are written (and old steps cleaned up); call before exit."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Wait for pending saves and release the manager's resources."""
        self._manager.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
