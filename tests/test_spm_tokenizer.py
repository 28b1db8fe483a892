"""SentencePiece tokenizer: training, determinism, round trips, padding, save/load, errors."""

from __future__ import annotations

import pathlib
import pickle

import numpy as np
import pytest

from attn_jax.data.spm_tokenizer import BOS_ID, EOS_ID, SentencePieceTokenizer
from attn_jax.data.tokenizers import WordTokenizer
from attn_jax.errors import UserError

SHARED_SST2 = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sentiment" / "sst2"

WORDS = (
    "the film plot actor actress scene story music camera director was is not very quite rather "
    "good great dull boring charming clever slow funny moving awful brilliant , ."
).split()


def corpus(n: int = 400, seed: int = 0) -> list[str]:
    """Lower-case sentences of 3 to 14 words drawn from a small vocabulary."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(3, 15))) for _ in range(n)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[SentencePieceTokenizer, pathlib.Path]:
    path = tmp_path_factory.mktemp("spm") / "spm.model"
    return SentencePieceTokenizer.train(corpus(), 120, path), path


def test_special_ids_and_vocab_bound(trained):
    tokenizer, path = trained
    assert path.is_file()
    assert tokenizer.pad_id == 0 and (tokenizer.bos_id, tokenizer.eos_id) == (2, 3)
    assert [tokenizer.pieces([i])[0] for i in (1, 2, 3)] == ["<unk>", "<s>", "</s>"]
    assert 30 < tokenizer.vocab_size <= 120


def test_round_trip(trained):
    tokenizer, _ = trained
    for text in corpus(50, seed=1):
        ids = tokenizer.encode(text, 128)
        assert ids.dtype == np.int32 and ids.shape == (128,)
        assert tokenizer.decode(ids) == text


def test_padding_and_truncation(trained):
    tokenizer, _ = trained
    text = "the film was not very good , but the music was brilliant ."
    full = tokenizer.encode(text, 64)
    length = int(np.count_nonzero(full))
    assert 0 < length < 64 and not full[length:].any()
    short = tokenizer.encode(text, 5)
    np.testing.assert_array_equal(short, full[:5])
    framed = tokenizer.encode(text, 6, add_bos=True, add_eos=True)
    assert framed[0] == BOS_ID and framed[-1] == EOS_ID
    np.testing.assert_array_equal(framed[1:-1], full[:4])
    assert tokenizer.decode(framed) == tokenizer.decode(full[:4])
    assert len(tokenizer.pieces(full)) == length


def test_unknown_characters_map_to_unk(trained):
    tokenizer, _ = trained
    assert 1 in tokenizer.encode("the film 你好", 16)


def test_training_is_deterministic(tmp_path):
    texts = corpus(300, seed=2)
    a = SentencePieceTokenizer.train(texts, 80, tmp_path / "a.model")
    b = SentencePieceTokenizer.train(iter(texts), 80, tmp_path / "b.model")
    assert (tmp_path / "a.model").read_bytes() == (tmp_path / "b.model").read_bytes()
    np.testing.assert_array_equal(a.encode(texts[0], 32), b.encode(texts[0], 32))


@pytest.mark.parametrize("model_type", ["bpe", "char", "word"])
def test_other_model_types(tmp_path, model_type):
    tokenizer = SentencePieceTokenizer.train(corpus(200), 60, tmp_path / "m.model", model_type=model_type)
    text = "the film was good ."
    assert tokenizer.decode(tokenizer.encode(text, 64)) == text


def test_save_load_and_pickle(trained, tmp_path):
    tokenizer, path = trained
    loaded = SentencePieceTokenizer.load(path)
    copy = pickle.loads(pickle.dumps(tokenizer))
    tokenizer.save(tmp_path / "sub" / "again.model")
    assert (tmp_path / "sub" / "again.model").read_bytes() == path.read_bytes()
    assert not list((tmp_path / "sub").glob("*.tmp*"))
    text = "a clever story , not boring"
    for other in (loaded, copy):
        assert other.vocab_size == tokenizer.vocab_size
        np.testing.assert_array_equal(other.encode(text, 20), tokenizer.encode(text, 20))


def test_same_interface_as_word_tokenizer(trained):
    tokenizer, _ = trained
    word = WordTokenizer.fit(corpus(), 100)
    for name in ("encode", "vocab_size", "pad_id", "save", "load", "decode"):
        assert hasattr(tokenizer, name) and hasattr(word, name)
    assert tokenizer.encode("good film", 8).dtype == word.encode("good film", 8).dtype


def test_tiny_corpus_with_large_vocab_does_not_crash(tmp_path):
    tokenizer = SentencePieceTokenizer.train(["good film", "bad film", ""], 8000, tmp_path / "m.model")
    assert tokenizer.vocab_size < 8000
    assert tokenizer.decode(tokenizer.encode("bad film", 8)) == "bad film"


def test_max_sentences_keeps_the_first_texts(tmp_path):
    texts = ["aaa bbb"] * 20 + ["zzz"] * 20
    tokenizer = SentencePieceTokenizer.train(texts, 50, tmp_path / "m.model", max_sentences=20)
    assert 1 in tokenizer.encode("zzz", 4)


def test_user_errors(tmp_path):
    with pytest.raises(
        UserError, match=r"vocab_size=6 is smaller than the \d+ pieces.*--config\.data\.vocab_size"
    ):
        SentencePieceTokenizer.train(corpus(50), 6, tmp_path / "m.model")
    with pytest.raises(UserError, match="No training text"):
        SentencePieceTokenizer.train(["", "  "], 50, tmp_path / "m.model")
    with pytest.raises(UserError, match="Unknown SentencePiece model type 'wordpiece'"):
        SentencePieceTokenizer.train(corpus(50), 50, tmp_path / "m.model", model_type="wordpiece")
    with pytest.raises(UserError, match="No SentencePiece model at"):
        SentencePieceTokenizer.load(tmp_path / "missing.model")
    (tmp_path / "corrupt.model").write_bytes(b"not a model")
    with pytest.raises(UserError, match="not a usable SentencePiece model"):
        SentencePieceTokenizer.load(tmp_path / "corrupt.model")
    assert not (tmp_path / "m.model").exists()


@pytest.mark.skipif(not SHARED_SST2.is_dir(), reason="../shared/data/sentiment/sst2 is not present")
def test_shared_sst2_subwords(tmp_path):
    """Trained on 10k real SST-2 training sentences, dev sentences round-trip and few pieces are unknown."""
    from attn_jax.data.text_files import read_labelled_text

    train, _ = read_labelled_text(SHARED_SST2, split="train")
    dev, _ = read_labelled_text(SHARED_SST2, split="validation")
    tokenizer = SentencePieceTokenizer.train(
        (t for t, _ in train), 2000, tmp_path / "spm.model", max_sentences=10_000
    )
    assert tokenizer.vocab_size == 2000
    ids = [tokenizer.encode(t, 256) for t, _ in dev]
    exact = np.mean([tokenizer.decode(i) == t for i, (t, _) in zip(ids, dev, strict=True)])
    unknown = np.mean([np.mean(i[i != 0] == 1) for i in ids])
    assert exact > 0.97 and unknown < 0.01
