"""The summarization task: extended-vocabulary encoding, the loop on every source, and that copying helps."""

import json

import numpy as np
import pytest

from attn_jax.data import copy_vocab
from attn_jax.data.tokenizers import WordTokenizer
from attn_jax.errors import UserError
from attn_jax.tasks import build_task
from attn_jax.train import train_and_evaluate
from attn_jax.train.loop import predict
from configs import summarization


def _small_config(**model):
    config = summarization.get_config("tiny")
    config.data.train_size = 256
    config.data.eval_size = 8
    config.data.vocab_size = 300
    config.data.bucket_boundaries = ()  # one compiled step
    config.model.update(embed_dim=16, hidden_dim=16, max_oovs=24, **model)
    config.train.batch_size = 8
    config.train.steps = 2
    config.train.log_every = 2
    config.train.eval_every = 2
    config.decode.max_len = 8
    config.decode.batch_size = 8
    config.decode.beam_size = 2
    return config


def test_extended_vocabulary_numbers_source_oovs_in_order():
    vocab = WordTokenizer.fit(["a b c"], 10, sequence_marks=True)
    words = "a zed b yam zed c xu".split()
    oovs = copy_vocab.source_oovs(words, vocab, max_oovs=2)
    assert oovs == ["zed", "yam"]  # first appearance order; "xu" is past max_oovs
    ids = copy_vocab.extended_ids(words, vocab, oovs, vocab_size=128)
    a, b, c = vocab.ids("a b c".split())
    assert ids == [a, 128, b, 129, 128, c, vocab.unk_id]
    # A target word is copied only if its source has it; other unknown words stay <unk>.
    assert copy_vocab.extended_ids(["yam", "wok", "b"], vocab, oovs, 128) == [129, vocab.unk_id, b]
    assert copy_vocab.extended_words([128, b, 129, 130], vocab, oovs, 128) == ["zed", "b", "yam", "<unk>"]


def test_examples_copy_target_names_from_their_source(tmp_path):
    task = build_task(_small_config(), tmp_path)
    assert (tmp_path / "vocab.txt").is_file()
    V, unk = task.vocab_size, task.tokenizer.unk_id
    copied = 0
    for ex, (source, target) in zip(task._eval, task.eval_pairs, strict=True):
        src_words = task.tokenizer.words(source)
        assert ex["src"][len(src_words)] == task.tokenizer.eos_id
        oov_positions = ex["src"] == unk
        assert np.all(ex["src_ext"][oov_positions] >= V) and np.all(ex["src_ext"][~oov_positions] < V)
        copied += np.count_nonzero(ex["tgt_out"] >= V)
        # The model reads copied words back as <unk> and is trained to write them by their source id.
        assert np.array_equal(ex["tgt_in"][1:] >= V, np.zeros_like(ex["tgt_in"][1:], bool))
        length = np.count_nonzero(ex["tgt_out"]) - 1  # without EOS
        assert task.detokenize(ex["tgt_out"][:length], source) == target
    assert copied > 0  # the rare names of builtin:summarization are outside a 300-word vocabulary


def test_train_and_evaluate_writes_predictions_attention_and_rouge(tmp_path):
    final = train_and_evaluate(_small_config(), tmp_path)
    assert {"loss", "accuracy", "perplexity", "bleu", "rouge1", "rouge2", "rougeL"} <= set(final)
    assert np.isfinite(final["loss"]) and 0.0 <= final["rougeL"] <= 100.0
    predictions = [json.loads(line) for line in (tmp_path / "predictions" / "step_0000002.jsonl").open()]
    assert len(predictions) == 8 and {"source", "reference", "prediction"} <= set(predictions[0])
    assert len(list((tmp_path / "attention").glob("step_0000002_example_*.png"))) == 3
    lines = predict(_small_config(), tmp_path, predictions[0]["source"]).splitlines()
    assert len(lines) == 2 and lines[1].startswith("most attended source piece")


def test_jsonl_files_source_with_named_fields(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    records = [
        {"email": f"Hi all, the {w} meeting moves to room {n}. Thanks, Kim", "subject": f"{w} room {n}"}
        for w in ("budget", "gas", "trading", "legal")
        for n in range(12)
    ]
    for split in ("train", "dev"):
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    config = _small_config()
    config.data.update(source=f"files:{data}", eval_split="dev", vocab_size=30, train_size=None)
    final = train_and_evaluate(config, tmp_path / "run")
    assert np.isfinite(final["loss"]) and "rougeL" in final


def test_tfds_source_runs_a_training_step(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    config = _small_config()
    config.data.update(source="tfds:aeslc", train_size=16, eval_size=8, max_source_len=32)
    with tfds.testing.mock_data(num_examples=16, policy=tfds.testing.MockPolicy.USE_CODE):
        final = train_and_evaluate(config, tmp_path)
    assert np.isfinite(final["loss"])


@pytest.mark.parametrize(
    "field, value, message",
    [("model.name", "transformer", "Unknown summarization model"), ("model.max_oovs", -1, "max_oovs")],
)
def test_bad_model_settings_are_user_errors(tmp_path, field, value, message):
    config = _small_config()
    section, key = field.split(".")
    config[section][key] = value
    with pytest.raises(UserError, match=message):
        _ = build_task(config, tmp_path).model


def _learning_config(copy: bool):
    """summarization:tiny at half its width, stopped early: enough to show what copying buys."""
    config = summarization.get_config("tiny")
    config.data.update(train_size=6000, eval_size=200, bucket_boundaries=())
    config.model.update(embed_dim=32, hidden_dim=64, copy=copy)
    config.train.update(steps=120, eval_every=120, log_every=60, learning_rate=3e-3)
    config.decode.update(beam_size=1, num_examples=None)
    return config


def test_pointer_generator_learns_to_copy_and_beats_no_copy(tmp_path):
    """Held-out ROUGE-L: the headlines' names and numbers are mostly outside the vocabulary, so only the
    pointer can write them (See et al., 2017)."""
    with_copy = train_and_evaluate(_learning_config(copy=True), tmp_path / "copy")
    without = train_and_evaluate(_learning_config(copy=False), tmp_path / "no_copy")
    assert with_copy["rougeL"] >= 70.0, with_copy
    assert with_copy["rougeL"] > without["rougeL"] + 10.0, (with_copy, without)
