"""The whole training loop on each kind of data source: tfds (mock data) and files."""

import json

import pytest
import tensorflow_datasets as tfds

from attn_jax.errors import UserError
from attn_jax.train import train_and_evaluate
from configs import sentiment


def _few_steps(variant: str):
    config = sentiment.get_config(variant)
    config.data.vocab_size = 64
    config.data.max_len = 24
    config.model.update(embed_dim=16, hidden_dim=16, pooling_units=16)
    config.train.update(batch_size=4, steps=2, log_every=1, eval_every=2, checkpoint_every=2)
    return config


def test_tfds_path_on_mock_data(tmp_path):
    config = _few_steps("sst2")
    config.data.eval_size = 8
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        final = train_and_evaluate(config, tmp_path)
    assert 0.0 <= final["accuracy"] <= 1.0
    assert (tmp_path / "spm.model").exists()


def test_files_path_on_a_small_tsv_with_bad_records(tmp_path, caplog):
    data = tmp_path / "data"
    data.mkdir()
    words = ("bad awful", "good fine")
    rows = ["label\tsentence"] + [f"{i % 2}\t{words[i % 2]} film {i}" for i in range(40)]
    (data / "train.tsv").write_text("\n".join([*rows, "1\t", "7\tunknown label"]) + "\n")
    (data / "dev.tsv").write_text("\n".join(rows[:9]) + "\n")
    config = _few_steps("files")
    config.data.source = f"files:{data}"
    with caplog.at_level("INFO"):
        final = train_and_evaluate(config, tmp_path / "run")
    assert 0.0 <= final["accuracy"] <= 1.0
    assert "empty_text=1" in caplog.text and "unknown_label=1" in caplog.text
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["split"] == "eval"


def test_files_variant_without_a_path_says_how_to_fix(tmp_path):
    with pytest.raises(UserError, match="names nothing after 'files:'"):
        train_and_evaluate(_few_steps("files"), tmp_path)
