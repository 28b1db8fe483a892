"""The translation task end to end for a few steps: workdir outputs, data sources, decoding, errors."""

import json

import pytest

from attn_jax.errors import UserError
from attn_jax.tasks import build_task
from attn_jax.train import train_and_evaluate
from attn_jax.train.loop import predict
from configs import translation


def _small_config(**model):
    config = translation.get_config("tiny")
    config.data.train_size = 256
    config.data.eval_size = 16
    config.data.vocab_size = 300
    config.data.bucket_boundaries = ()  # one compiled step
    config.model.embed_dim = 32
    config.model.mlp_dim = 64
    config.model.num_encoder_layers = 1
    config.model.num_decoder_layers = 1
    config.model.update(model)
    config.train.batch_size = 16
    config.train.steps = 3
    config.train.log_every = 3
    config.train.eval_every = 3
    config.decode.max_len = 12
    config.decode.batch_size = 8
    config.decode.beam_size = 2
    return config


def test_train_and_evaluate_writes_predictions_attention_and_metrics(tmp_path):
    final = train_and_evaluate(_small_config(), tmp_path)
    assert {"loss", "accuracy", "perplexity", "bleu", "rouge1", "rouge2", "rougeL"} <= set(final)
    assert 0.0 <= final["bleu"] <= 100.0 and final["perplexity"] > 1.0
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["split"] == "eval" and lines[-1]["bleu"] == pytest.approx(final["bleu"])
    predictions = [json.loads(line) for line in (tmp_path / "predictions" / "step_0000003.jsonl").open()]
    assert len(predictions) == 16 and {"source", "reference", "prediction"} <= set(predictions[0])
    assert len(list((tmp_path / "attention").glob("step_0000003_example_*.png"))) == 3
    assert (tmp_path / "spm.model").is_file()
    lines = predict(_small_config(), tmp_path, predictions[0]["source"]).splitlines()
    assert len(lines) == 2 and lines[1].startswith("most attended source piece")


def test_scanned_rematted_rotary_model_trains(tmp_path):
    config = _small_config(scan_layers=True, remat="full", position="rotary")
    final = train_and_evaluate(config, tmp_path)
    assert final["loss"] == pytest.approx(final["loss"])  # finite, not NaN


def test_files_source_reads_line_aligned_text(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    english = [f"the {w} sees a {v}" for w in ("cat", "dog", "bird", "fish") for v in ("tree", "car", "hill")]
    german = [
        f"die {w} sieht ein {v}"
        for w in ("katze", "hund", "vogel", "fisch")
        for v in ("baum", "auto", "berg")
    ]
    for split in ("train", "val"):
        (data / f"{split}.en").write_text("\n".join(english * 4) + "\n")
        (data / f"{split}.de").write_text("\n".join(german * 4) + "\n")
    config = _small_config()
    config.data.source = f"files:{data}"
    config.data.vocab_size = 40
    config.data.train_size = None
    config.data.eval_size = None
    final = train_and_evaluate(config, tmp_path / "run")
    assert {"bleu", "perplexity"} <= set(final)


def test_tfds_source_runs_a_training_step(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    config = _small_config()
    config.data.update(source="tfds:wmt14_translate/de-en", train_size=32, eval_size=8, vocab_size=200)
    with tfds.testing.mock_data(num_examples=32, policy=tfds.testing.MockPolicy.USE_CODE):
        final = train_and_evaluate(config, tmp_path)
    assert final["loss"] == pytest.approx(final["loss"]) and "bleu" in final  # finite


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("model.name", "lstm", "Unknown translation model"),
        ("model.position", "alibi", "Unknown position"),
        ("model.remat", "some", "Unknown remat policy"),
    ],
)
def test_bad_model_settings_are_user_errors(tmp_path, field, value, message):
    config = _small_config()
    section, key = field.split(".")
    config[section][key] = value
    with pytest.raises(UserError, match=message):
        _ = build_task(config, tmp_path).model


@pytest.mark.parametrize(
    "attention",
    [
        "bahdanau",
        "luong_dot",
        "luong_general",
        "luong_concat",
        "local_m",
        "local_p",
        "location",
        "hard",
        "none",
    ],
)
def test_every_rnn_attention_trains_and_beam_decodes(tmp_path, attention):
    config = _small_config()
    config.model.update(
        name="rnn",
        attention=attention,
        embed_dim=16,
        hidden_dim=16,
        attention_units=16,
        window=3,
        hard_reward="bleu" if attention == "hard" else "likelihood",
    )
    config.train.steps = 2
    config.train.log_every = 2
    config.train.eval_every = 2
    config.decode.max_len = 8
    final = train_and_evaluate(config, tmp_path)
    assert final["loss"] == pytest.approx(final["loss"]) and final["loss"] < 20.0  # finite
    predictions = [json.loads(line) for line in (tmp_path / "predictions" / "step_0000002.jsonl").open()]
    assert len(predictions) == 16
