"""Sequence-to-sequence sources: builtin:, files: (parallel text, JSONL) and tfds: pairs, skips and errors."""

from __future__ import annotations

import json
import logging
import pathlib

import ml_collections
import pytest

from attn_jax.data import parallel_text, tfds_pairs
from attn_jax.data.builtin import summarization, translation
from attn_jax.data.parallel_text import read_jsonl_pairs, read_parallel_text
from attn_jax.data.seq2seq_sources import load_pairs
from attn_jax.data.text_files import SkipCounts
from attn_jax.errors import UserError

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
MULTI30K = SHARED / "translation" / "multi30k"
AESLC = SHARED / "summarization" / "aeslc"


def config(source: str, **fields) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({"source": source, "train_size": None, "eval_size": None, **fields})


def write(path: pathlib.Path, data: bytes | str) -> pathlib.Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


# ----------------------------------------------------------------------------------------------------------
# builtin:


@pytest.mark.parametrize("module", [translation, summarization])
def test_builtin_sources(module):
    name = module.__name__.rsplit(".", 1)[1]
    data = config(f"builtin:{name}", train_size=30, eval_size=7)
    train = load_pairs(data, "train", seed=0)
    assert train == module.generate("train", 30, seed=0)
    assert load_pairs(data, "train", seed=1) != train
    assert load_pairs(data, "validation", seed=0) == module.generate("validation", 7, seed=0)
    with pytest.raises(UserError, match=rf"builtin:{name} has no split 'test_2016_flickr'.*eval_split"):
        load_pairs(data, "test_2016_flickr", seed=0)


def test_unknown_sources():
    with pytest.raises(UserError, match="Unknown builtin data set 'poetry'"):
        load_pairs(config("builtin:poetry"), "train", seed=0)
    with pytest.raises(UserError, match="Unknown data source"):
        load_pairs(config("hf:wmt16"), "train", seed=0)


# ----------------------------------------------------------------------------------------------------------
# files: parallel text


def test_parallel_text_bad_lines_are_skipped_and_counted(tmp_path, caplog):
    write(tmp_path / "train.en", b"\xef\xbb\xbfa dog runs\r\n\nbad \xff line\nthe end\n  \ntwo cats\n")
    write(tmp_path / "train.de", "ein hund läuft\r\nleer\nschlecht\ndas ende\n\nzwei katzen\n")
    with caplog.at_level(logging.INFO, logger=parallel_text.__name__):
        pairs, skips = read_parallel_text(tmp_path, "train", "en", "de")
    assert pairs == [("a dog runs", "ein hund läuft"), ("the end", "das ende"), ("two cats", "zwei katzen")]
    assert skips == SkipCounts(empty_text=2, undecodable=1)
    assert "Read 3 pairs" in caplog.text and "undecodable=1" in caplog.text
    # The other direction reads the same lines.
    data = config(f"files:{tmp_path}", source_lang="de", target_lang="en", train_size=2)
    assert load_pairs(data, "train", seed=0) == [(t, s) for s, t in pairs[:2]]


def test_parallel_text_split_names(tmp_path):
    for stem in ("train", "dev", "test_2016_flickr"):
        write(tmp_path / f"{stem}.en", f"{stem} source\n")
        write(tmp_path / f"{stem}.de", f"{stem} target\n")
    data = config(f"files:{tmp_path}", source_lang="en", target_lang="de")
    assert load_pairs(data, "validation", seed=0) == [("dev source", "dev target")]
    flickr = [("test_2016_flickr source", "test_2016_flickr target")]
    assert load_pairs(data, "test_2016_flickr", seed=0) == flickr
    with pytest.raises(UserError, match=r"No 'test' split in .*test\.\{en,de\}.*eval_split"):
        load_pairs(data, "test", seed=0)


def test_parallel_text_errors(tmp_path):
    write(tmp_path / "train.en", "one\ntwo\nthree\n")
    write(tmp_path / "train.de", "eins\nzwei\n")
    write(tmp_path / "val.en", "one\n")
    with pytest.raises(UserError, match=r"train\.en has 3 lines but .*train\.de has 2.*line-aligned"):
        read_parallel_text(tmp_path, "train", "en", "de")
    with pytest.raises(UserError, match=r"val\.de is missing .*source_lang/target_lang"):
        read_parallel_text(tmp_path, "validation", "en", "de")
    with pytest.raises(UserError, match=r"name its languages with --config\.data\.source_lang"):
        load_pairs(config(f"files:{tmp_path}"), "train", seed=0)
    with pytest.raises(UserError, match="No such data file or directory"):
        load_pairs(config(f"files:{tmp_path / 'nope'}", source_lang="en", target_lang="de"), "train", seed=0)
    write(tmp_path / "test.en", "\n \n")
    write(tmp_path / "test.de", "a\nb\n")
    with pytest.raises(UserError, match=r"No usable pairs .*skipped 2 \(empty_text=2\)"):
        read_parallel_text(tmp_path, "test", "en", "de")


@pytest.mark.skipif(not MULTI30K.is_dir(), reason="../shared/data/translation/multi30k is not present")
@pytest.mark.parametrize(
    ("split", "size"), [("train", 29_000), ("validation", 1_014), ("test_2016_flickr", 1_000)]
)
def test_shared_multi30k(split, size):
    data = config(f"files:{MULTI30K}", source_lang="de", target_lang="en")
    pairs = load_pairs(data, split, seed=0)
    assert len(pairs) == size
    assert all(s and t and s == s.strip() for s, t in pairs)
    german = sum(any(c in s for c in "äöüß") for s, _ in pairs)
    assert german > 0.1 * size and not any(any(c in t for c in "äöüß") for _, t in pairs[:200])


# ----------------------------------------------------------------------------------------------------------
# files: JSONL


def test_jsonl_default_fields_bad_lines_and_whitespace(tmp_path, caplog):
    rows = [
        json.dumps({"id": 1, "email": "Hi,\n\nthe meeting  moved.\n", "subject": "Meeting moved"}).encode(),
        b"{not json",
        json.dumps(["a", "list"]).encode(),
        json.dumps({"email": "no subject"}).encode(),
        json.dumps({"email": "  ", "subject": "blank email"}).encode(),
        json.dumps({"email": 3, "subject": "not text"}).encode(),
        b'{"email": "caf\xe9", "subject": "latin-1"}',
        b"",
        json.dumps({"email": "Lunch?", "subject": "Re: lunch"}).encode(),
    ]
    path = write(tmp_path / "mail.jsonl", b"\n".join(rows) + b"\n")
    with caplog.at_level(logging.INFO, logger=parallel_text.__name__):
        pairs, skips = read_jsonl_pairs(path)
    assert pairs == [("Hi, the meeting moved.", "Meeting moved"), ("Lunch?", "Re: lunch")]
    assert skips == SkipCounts(bad_json=2, empty_text=3, undecodable=1)
    assert "skipped 6" in caplog.text


def test_jsonl_named_fields_directory_splits_and_errors(tmp_path):
    write(tmp_path / "train.jsonl", '{"body": "long text", "headline": "short"}\n' * 3)
    write(tmp_path / "dev.jsonl", '{"body": "dev text", "headline": "dev"}\n')
    fields = {"source_field": "body", "target_field": "headline"}
    data = config(f"files:{tmp_path}", **fields, eval_size=1, train_size=2)
    assert load_pairs(data, "train", seed=0) == [("long text", "short")] * 2
    assert load_pairs(data, "validation", seed=0) == [("dev text", "dev")]
    with pytest.raises(UserError) as error:
        load_pairs(config(f"files:{tmp_path}"), "train", seed=0)
    message = str(error.value)
    assert "no source field 'document' or 'article'" in message and "'body', 'headline'" in message
    assert "--config.data.source_field=FIELD" in message and "\n" not in message
    with pytest.raises(UserError, match=r"no target field 'title'.*--config\.data\.target_field"):
        read_jsonl_pairs(tmp_path / "train.jsonl", source_field="body", target_field="title")
    with pytest.raises(UserError, match="No 'test' split"):
        load_pairs(data, "test", seed=0)
    with pytest.raises(UserError, match="must be JSONL"):
        load_pairs(config(f"files:{write(tmp_path / 'x.tsv', 'a,b')}"), "train", seed=0)


@pytest.mark.skipif(not AESLC.is_dir(), reason="../shared/data/summarization/aeslc is not present")
@pytest.mark.parametrize(("split", "size"), [("train", 14_436), ("validation", 1_960)])
def test_shared_aeslc(split, size):
    pairs = load_pairs(config(f"files:{AESLC}"), split, seed=0)
    assert size - 20 <= len(pairs) <= size  # a few e-mails have an empty subject
    assert all(s and t and "\n" not in s for s, t in pairs)
    assert sum(len(s.split()) for s, _ in pairs) > 10 * sum(len(t.split()) for _, t in pairs)


# ----------------------------------------------------------------------------------------------------------
# tfds:


@pytest.fixture(scope="module")
def tfds():
    return pytest.importorskip("tensorflow_datasets")


@pytest.mark.parametrize(
    ("name", "source_lang", "target_lang", "keys"),
    [
        ("wmt14_translate/de-en", "en", "de", ("en", "de")),
        ("wmt17_translate/de-en", None, None, ("de", "en")),
        ("ted_hrlr_translate/pt_to_en", None, None, ("pt", "en")),
        ("cnn_dailymail", None, None, ("article", "highlights")),
        ("xsum", None, None, ("document", "summary")),
        ("aeslc", None, None, ("email_body", "subject_line")),
    ],
)
def test_tfds_mock_data(tfds, name, source_lang, target_lang, keys):
    """``mock_data(policy=USE_CODE)`` fakes the array_record data source from the builder's features."""
    data = config(f"tfds:{name}", source_lang=source_lang, target_lang=target_lang, eval_size=3)
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        pairs = load_pairs(data, "train", seed=0)
        examples = list(tfds_pairs.open_data_source(name, "train"))
        assert len(load_pairs(data, "validation", seed=0)) == 3
        flag = "lang" if len(keys[0]) == 2 else "field"
        with pytest.raises(UserError, match=f"no source field 'body'.*'{keys[0]}'.*source_{flag}="):
            load_pairs(config(f"tfds:{name}", source_field="body"), "train", seed=0)
    expected = [(" ".join(e[keys[0]].split()), " ".join(e[keys[1]].split())) for e in examples]
    assert pairs == [p for p in expected if all(p)]
    assert 0 < len(pairs) <= 6


def test_tfds_bytes_are_decoded_and_bad_examples_counted(monkeypatch, caplog):
    examples = [
        {"en": b"a  house", "de": b"ein haus"},
        {"en": b"\xff\xfe", "de": b"kaputt"},
        {"en": b"", "de": b"leer"},
        {"en": b"a tree", "de": b"ein baum"},
    ]
    monkeypatch.setattr(tfds_pairs, "open_data_source", lambda *args, **kwargs: examples)
    with caplog.at_level(logging.INFO, logger=tfds_pairs.__name__):
        pairs = tfds_pairs.load_tfds_pairs("made_up/de-en", "train", source_key="en", target_key="de")
    assert pairs == [("a house", "ein haus"), ("a tree", "ein baum")]
    assert "skipped 2 (empty_text=1, undecodable=1)" in caplog.text
    assert tfds_pairs.load_tfds_pairs("made_up/en-de", "train", limit=1) == [("a house", "ein haus")]
    del examples[0], examples[-1]
    with pytest.raises(UserError, match=r"tfds:made_up/de-en split 'train' has no usable pairs \(skipped 2"):
        tfds_pairs.load_tfds_pairs("made_up/de-en", "train")


def test_default_features():
    assert tfds_pairs.default_features("wmt14_translate/de-en") == ("de", "en")
    assert tfds_pairs.default_features("ted_hrlr_translate/pt_to_en") == ("pt", "en")
    assert tfds_pairs.default_features("cnn_dailymail/3.4.0") == ("article", "highlights")
    assert tfds_pairs.default_features("glue/sst2") is None
