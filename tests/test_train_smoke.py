"""The whole training loop for a few steps on built-in data, its workdir outputs and its CLI errors."""

import json
import pathlib
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from attn_jax.errors import UserError
from attn_jax.tasks import build_task
from attn_jax.train import train_and_evaluate
from attn_jax.train.parallel import make_runner
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


@pytest.mark.parametrize(
    "override, message",
    [
        ("--config.model.name=gru", "Unknown sentiment model 'gru'; valid models: transformer, bilstm."),
        ("--config.task=poetry", "Unknown task 'poetry'; valid tasks: sentiment, summarization, trans"),
        ("--config.mesh.data=3", "mesh data=3 x fsdp=1 x tensor=1 needs 3 devices but 1 are available"),
        ("--config.data.source=files:/no/such/dir", "/no/such/dir"),
        ("--config.data.source=hub:x", "Unknown data source 'hub:x'; use one of builtin:, files:, tfds:"),
    ],
)
def test_cli_exits_2_with_one_line(tmp_path, override, message):
    result = subprocess.run(
        [sys.executable, "train.py", f"--workdir={tmp_path}", "--config.data.train_size=64", override],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], errors
    assert "Traceback" not in result.stderr


def test_bfloat16_compute_keeps_float32_parameters(tmp_path):
    config = _small_config()
    config.dtype = "bfloat16"
    final = train_and_evaluate(config, tmp_path)
    assert 0.0 <= final["accuracy"] <= 1.0
    task = build_task(config, tmp_path)
    state = make_runner(task, config).init_state(jax.random.key(0))
    assert {x.dtype for x in jax.tree.leaves(nn.meta.unbox(state.params))} == {jnp.dtype("float32")}
    tokens = jnp.ones((2, config.data.max_len), jnp.int32)
    logits, captured = task.model.apply(
        {"params": state.params}, tokens, capture_intermediates=True, mutable=["intermediates"]
    )
    assert logits.dtype == jnp.float32  # the loss sees float32 logits
    assert captured["intermediates"]["head"]["__call__"][0].dtype == jnp.bfloat16  # computed in bf16


def test_gradient_accumulation_equals_one_big_batch(tmp_path):
    """Two accumulated micro-batches of 8 take the same step as one batch of 16 (same 16 examples)."""
    losses = {}
    for name, batch, accum in (("big", 16, 1), ("accumulated", 8, 2)):
        config = _small_config()
        config.model.dropout_rate = 0.0
        config.train.update(batch_size=batch, grad_accum_steps=accum, steps=2 * accum, log_every=accum)
        config.train.eval_every = 2 * accum
        train_and_evaluate(config, tmp_path / name)
        lines = [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        losses[name] = [x["loss"] for x in lines if x["split"] == "train"]
    # The second logged window starts after exactly one optimizer update in both runs.
    assert losses["accumulated"][1] == pytest.approx(losses["big"][1], rel=1e-5)


def test_eval_and_predict_modes_use_the_best_checkpoint(tmp_path):
    from attn_jax.train import evaluate_checkpoint, predict

    config = _small_config()
    config.train.update(steps=4, eval_every=2, checkpoint_every=2)
    train_and_evaluate(config, tmp_path)
    evals = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evals = [x for x in evals if x["split"] == "eval"]
    best = max(evals, key=lambda x: (x["accuracy"], -x["step"]))
    again = evaluate_checkpoint(config, tmp_path)
    assert again["accuracy"] == pytest.approx(best["accuracy"])
    answer = predict(config, tmp_path, "The acting was not bad at all")
    label, attended = answer.splitlines()
    assert label.split()[0] in ("negative", "positive")
    assert attended.startswith("attended to: ") and "(" in attended
    with pytest.raises(UserError, match="No checkpoint"):
        predict(config, tmp_path / "empty", "fine")
