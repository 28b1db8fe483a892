"""Checkpoints under real process deaths: SIGKILL and resume is exact, SIGTERM saves, NaN stops cleanly."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from attn_jax.train import NonFiniteLossError, train_and_evaluate
from attn_jax.train.checkpoints import Checkpointer
from configs import sentiment

ROOT = pathlib.Path(__file__).resolve().parents[1]
SMALL = [
    "--config.data.train_size=512", "--config.data.eval_size=64", "--config.model.num_layers=1",
    "--config.model.embed_dim=32", "--config.model.mlp_dim=64", "--config.train.batch_size=16",
    "--config.train.log_every=5", "--config.train.eval_every=10", "--config.train.checkpoint_every=5",
]


def _train_cli(workdir: pathlib.Path, steps: int) -> subprocess.Popen:
    """Start train.py; its stderr (progress bar, logs) goes to ``workdir``.log, read by ``_log``."""
    log = open(f"{workdir}.log", "a")  # a file, not a pipe: a full pipe would block the child
    proc = subprocess.Popen(
        [sys.executable, "train.py", f"--workdir={workdir}", f"--config.train.steps={steps}", *SMALL],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log, text=True,
    )
    log.close()
    return proc


def _log(workdir: pathlib.Path) -> str:
    return pathlib.Path(f"{workdir}.log").read_text()


def _wait_for_checkpoint(workdir: pathlib.Path, proc: subprocess.Popen, timeout: float = 600) -> int:
    """Block until a finished checkpoint step directory exists; return its step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = [int(p.name) for p in (workdir / "checkpoints").glob("*") if p.name.isdigit()]
        if steps:
            return max(steps)
        assert proc.poll() is None, f"training ended before any checkpoint: {_log(workdir)[-2000:]}"
        time.sleep(0.05)
    raise TimeoutError("no checkpoint appeared")


def _numbers(workdir: pathlib.Path) -> list[dict]:
    """metrics.jsonl without the wall-clock fields."""
    clock = {"time", "examples_per_sec", "tokens_per_sec"}
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in clock} for line in lines]


def test_sigkill_then_resume_gives_the_uninterrupted_numbers(tmp_path):
    steps = 60
    straight = _train_cli(tmp_path / "straight", steps)
    assert straight.wait(timeout=900) == 0, _log(tmp_path / "straight")[-2000:]

    killed = _train_cli(tmp_path / "killed", steps)
    _wait_for_checkpoint(tmp_path / "killed", killed)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=60) == -signal.SIGKILL  # died mid-run, not finished
    resumed = _train_cli(tmp_path / "killed", steps)
    assert resumed.wait(timeout=900) == 0, _log(tmp_path / "killed")[-2000:]
    assert "Resumed from step" in _log(tmp_path / "killed")

    assert _numbers(tmp_path / "killed") == _numbers(tmp_path / "straight")  # bitwise equal floats


def test_sigterm_saves_and_exits_cleanly(tmp_path):
    proc = _train_cli(tmp_path, 100_000)
    first = _wait_for_checkpoint(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=300) == 0
    assert "SIGTERM received" in _log(tmp_path)
    with Checkpointer(tmp_path / "checkpoints", max_to_keep=3, best_metric=None) as ckpt:
        assert ckpt.latest_step() >= first


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    config = sentiment.get_config("tiny")
    config.data.train_size, config.data.eval_size = 256, 32
    config.model.num_layers = 1
    config.train.update(batch_size=16, steps=200, log_every=1, eval_every=1000, checkpoint_every=2)
    config.train.update(learning_rate=1e30, warmup_steps=1, grad_clip_norm=1e30)  # diverges at once
    with pytest.raises(NonFiniteLossError, match=r"at step \d+; stopping\. The last checkpoint"):
        train_and_evaluate(config, tmp_path)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(x["loss"] == x["loss"] for x in lines[:-1] if x["split"] == "train")  # no NaN logged before


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_cli_reports_a_nan_with_exit_code_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "train.py", f"--workdir={tmp_path}", "--config.train.steps=50",
         "--config.train.learning_rate=1e30", "--config.train.grad_clip_norm=1e30",
         "--config.train.warmup_steps=1", "--config.train.log_every=1", *SMALL[:6]],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 2
    assert "error: Training loss is nan at step" in result.stderr
