"""The whole training loop for a few steps on built-in data, its workdir outputs and its CLI errors."""

import json
import pathlib
import subprocess
import sys

import pytest

from attn_jax.errors import UserError
from attn_jax.train import train_and_evaluate
from configs import sentiment

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _small_config():
    config = sentiment.get_config("tiny")
    config.data.train_size = 256
    config.data.eval_size = 64
    config.model.num_layers = 1
    config.train.batch_size = 16
    config.train.steps = 4
    config.train.log_every = 2
    config.train.eval_every = 4
    return config


def test_train_and_evaluate_writes_the_workdir(tmp_path):
    final = train_and_evaluate(_small_config(), tmp_path)
    assert set(final) == {"loss", "accuracy"} and 0.0 <= final["accuracy"] <= 1.0
    assert json.loads((tmp_path / "config.json").read_text())["task"] == "sentiment"
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["split"]) for r in lines] == [(2, "train"), (4, "train"), (4, "eval")]
    assert {"loss", "accuracy", "examples_per_sec", "tokens_per_sec", "time"} <= set(lines[0])
    assert lines[-1]["accuracy"] == pytest.approx(final["accuracy"])
    assert (tmp_path / "vocab.txt").read_text().startswith("<pad>\n<unk>\n")
    assert any((tmp_path / "tensorboard").iterdir())


def test_same_seed_same_numbers(tmp_path):
    a = train_and_evaluate(_small_config(), tmp_path / "a")
    b = train_and_evaluate(_small_config(), tmp_path / "b")
    assert a == b


def test_unknown_names_are_user_errors(tmp_path):
    config = _small_config()
    config.task = "poetry"
    with pytest.raises(UserError, match="Unknown task 'poetry'; valid tasks: sentiment"):
        train_and_evaluate(config, tmp_path)
    config = _small_config()
    config.mesh.data = 3
    with pytest.raises(UserError, match="needs 3 devices but 1 are available"):
        train_and_evaluate(config, tmp_path)


def test_cli_exits_2_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "train.py", f"--workdir={tmp_path}", "--config.model.name=gru"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert "error: Unknown sentiment model 'gru'; valid models: transformer." in result.stderr
