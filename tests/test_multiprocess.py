"""Two processes on localhost (jax.distributed, Gloo CPU collectives) train like one process."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
ARGS = [
    "--config.data.train_size=256", "--config.data.eval_size=32", "--config.model.dropout_rate=0.0",
    "--config.model.embed_dim=16", "--config.model.hidden_dim=16", "--config.model.pooling_units=16",
    "--config.train.batch_size=8", "--config.train.steps=6", "--config.train.log_every=1",
    "--config.train.eval_every=6", "--config.train.checkpoint_every=6",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(workdir: pathlib.Path, log: pathlib.Path, extra: list[str]) -> subprocess.Popen:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    with log.open("w") as out:  # a file, not a pipe, so the child never blocks on its output
        return subprocess.Popen(
            [sys.executable, "train.py", f"--workdir={workdir}", *ARGS, *extra],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )


def _train_losses(workdir: pathlib.Path) -> list[float]:
    lines = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [x["loss"] for x in lines if x["split"] == "train"]


def test_two_processes_match_one(tmp_path):
    logs = [tmp_path / f"{name}.log" for name in ("single", "process0", "process1")]
    address = f"127.0.0.1:{_free_port()}"
    procs = [_launch(tmp_path / "single", logs[0], [])] + [
        _launch(
            tmp_path / "multi", logs[i + 1],
            [f"--coordinator_address={address}", "--num_processes=2", f"--process_id={i}"],
        )
        for i in range(2)
    ]
    for proc, log in zip(procs, logs, strict=True):
        assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    assert "Process 1 of 2; 1 local of 2 devices." in logs[2].read_text()
    multi, single = _train_losses(tmp_path / "multi"), _train_losses(tmp_path / "single")
    assert len(single) == 6
    np.testing.assert_allclose(multi, single, rtol=1e-5)
