"""Metric output: ``metrics.jsonl`` lines (DESIGN.md) mirrored to TensorBoard."""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any

import jax
import numpy as np
from tensorboardX import SummaryWriter


class MetricWriter:
    """Appends ``{"step", "split", "time", ...metrics}`` lines; only process 0 writes."""

    def __init__(self, workdir: pathlib.Path):
        self._active = jax.process_index() == 0
        self._path = workdir / "metrics.jsonl"
        self._tb = SummaryWriter(str(workdir / "tensorboard")) if self._active else None

    def write(self, step: int, split: str, metrics: dict[str, Any]) -> dict[str, Any]:
        record = {"step": int(step), "split": split, "time": time.time()}
        record.update({k: float(np.asarray(v)) for k, v in metrics.items()})
        if self._active:
            with self._path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            for key, value in metrics.items():
                self._tb.add_scalar(f"{split}/{key}", float(np.asarray(value)), step)
            self._tb.flush()
        return record

    def drop_after(self, step: int) -> None:
        """Forget lines logged after ``step``: a resumed run rewrites them exactly."""
        if not self._active or not self._path.exists():
            return
        lines = self._path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if json.loads(line)["step"] <= step]
        self._path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def reduce_metrics(totals: dict[str, tuple[Any, Any]]) -> dict[str, float]:
    """(sum, count) pairs -> means; ``perplexity`` follows from a mean ``loss`` where asked for."""
    return {k: float(s) / max(float(c), 1.0) for k, (s, c) in totals.items()}


def add_metrics(totals: dict | None, metrics: dict[str, tuple[Any, Any]]) -> dict:
    if totals is None:
        return dict(metrics)
    return {k: (totals[k][0] + s, totals[k][1] + c) for k, (s, c) in metrics.items()}
