"""`files:` and `tfds:` text-classification sources: records, skip counts, and one-line user errors."""

from __future__ import annotations

import json
import logging
import pathlib

import pytest

from attn_jax.data import text_files, tfds_text
from attn_jax.data.text_files import SkipCounts, find_split_file, parse_label, read_labelled_text
from attn_jax.errors import UserError

SHARED_SST2 = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sentiment" / "sst2"


def write(path: pathlib.Path, data: bytes | str) -> pathlib.Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


# ----------------------------------------------------------------------------------------------------------
# files: TSV / CSV / JSONL


def test_tsv_label_first_crlf_and_bom(tmp_path):
    path = write(
        tmp_path / "train.tsv",
        b"\xef\xbb\xbflabel\tsentence\r\n0\tdull and slow \r\n1\tcr\xc3\xa8me br\xc3\xbbl\xc3\xa9e\r\n",
    )
    records, skips = read_labelled_text(path)
    assert records == [("dull and slow", 0), ("crème brûlée", 1)]
    assert skips == SkipCounts()


def test_tsv_bad_records_are_skipped_and_counted(tmp_path, caplog):
    lines = [
        b"sentence\tlabel",
        b"good film\t1",
        b"\t0",  # empty text
        b"   \t1",  # blank text
        b"caf\xe9 au lait\t1",  # latin-1 byte: not UTF-8
        b"no label here\t",  # missing label
        b"unlabelled\t-1",  # GLUE test convention
        b"maybe\tneutral",  # a name, but no `labels` given
        b"too\tmany\tcolumns",
        b"only one column",
        b"",  # blank lines are not records
        b"bad film\t0",
    ]
    path = write(tmp_path / "data.tsv", b"\n".join(lines) + b"\n")
    with caplog.at_level(logging.INFO, logger=text_files.__name__):
        records, skips = read_labelled_text(path)
    assert records == [("good film", 1), ("bad film", 0)]
    assert skips == SkipCounts(empty_text=2, undecodable=1, missing_label=1, unknown_label=2, wrong_columns=2)
    assert skips.total == 8
    assert "Read 2 records" in caplog.text and "undecodable=1" in caplog.text


def test_tsv_quotes_are_ordinary_characters(tmp_path):
    path = write(tmp_path / "data.tsv", 'text\tlabel\n"a quoted" start\t1\nan "open quote\t0\n')
    records, _ = read_labelled_text(path)
    assert records == [('"a quoted" start', 1), ('an "open quote', 0)]


def test_csv_with_quoted_commas_and_named_labels(tmp_path):
    path = write(
        tmp_path / "reviews.csv",
        'id,review,sentiment\n1,"slow, but lovely",positive\n2,awful,Negative\n3,meh,neutral\n',
    )
    records, skips = read_labelled_text(path, label_field="sentiment", labels=("negative", "positive"))
    assert records == [("slow, but lovely", 1), ("awful", 0)]
    assert skips == SkipCounts(unknown_label=1)


def test_jsonl_fields_and_bad_lines(tmp_path):
    rows = [
        json.dumps({"body": "great", "stars": 1}),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"body": "terrible", "stars": "0"}),
        json.dumps({"body": "no stars"}),
        json.dumps({"stars": 1}),
        json.dumps({"body": "three", "stars": 3}),
    ]
    path = write(tmp_path / "data.jsonl", "\n".join(rows) + "\n")
    records, skips = read_labelled_text(path, text_field="body", label_field="stars", labels=("neg", "pos"))
    assert records == [("great", 1), ("terrible", 0)]
    assert skips == SkipCounts(bad_json=2, missing_label=1, empty_text=1, unknown_label=1)


def test_jsonl_default_fields(tmp_path):
    path = write(tmp_path / "data.jsonl", '{"text": "fine", "label": 1}\n{"text": "bad", "label": 0.0}\n')
    assert read_labelled_text(path)[0] == [("fine", 1), ("bad", 0)]


@pytest.mark.parametrize(
    ("value", "labels", "expected"),
    [
        (1, None, 1),
        ("0", None, 0),
        ("1.0", None, 1),
        ("1.5", None, None),
        (-1, None, None),
        (True, None, None),
        ("positive", None, None),
        ("positive", ("negative", "positive"), 1),
        ("POSITIVE", ("negative", "positive"), 1),
        (2, ("negative", "positive"), None),
        ("1", ("negative", "positive"), 1),
    ],
)
def test_parse_label(value, labels, expected):
    assert parse_label(value, labels) == expected


def test_directory_splits(tmp_path):
    for name, label in (("train.tsv", 0), ("dev.tsv", 1), ("test.jsonl", 1)):
        body = f"label\tsentence\n{label}\tx\n" if name.endswith("tsv") else '{"text": "y", "label": 1}\n'
        write(tmp_path / name, body)
    assert find_split_file(tmp_path, "train").name == "train.tsv"
    assert find_split_file(tmp_path, "validation").name == "dev.tsv"
    assert find_split_file(tmp_path, "test").name == "test.jsonl"
    assert read_labelled_text(tmp_path, split="validation")[0] == [("x", 1)]
    assert read_labelled_text(tmp_path, split="test")[0] == [("y", 1)]


def test_directory_without_split_or_with_two_files(tmp_path):
    write(tmp_path / "train.tsv", "label\ttext\n1\ta\n")
    write(tmp_path / "train.csv", "label,text\n1,a\n")
    with pytest.raises(UserError, match=r"No 'validation' split in .*dev\{"):
        find_split_file(tmp_path, "validation")
    with pytest.raises(UserError, match=r"Several files for split 'train'.*train\.tsv, train\.csv"):
        read_labelled_text(tmp_path, split="train")


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(UserError, match=r"No such data file or directory.*nope\.tsv"):
        read_labelled_text(tmp_path / "nope.tsv")
    with pytest.raises(UserError, match=r"must end in \.tsv, \.csv, \.jsonl"):
        read_labelled_text(write(tmp_path / "data.txt", "label\ttext\n"))


def test_unrecognised_header_names_the_columns_and_the_flag(tmp_path):
    path = write(tmp_path / "data.tsv", "polarity\tphrase\n1\tgood\n")
    with pytest.raises(UserError) as error:
        read_labelled_text(path)
    message = str(error.value)
    assert "'polarity', 'phrase'" in message and "--config.data.text_field=" in message
    assert "\n" not in message
    with pytest.raises(UserError, match=r"no label column 'label'.*--config\.data\.label_field="):
        read_labelled_text(path, text_field="phrase")
    assert read_labelled_text(path, text_field="phrase", label_field="polarity")[0] == [("good", 1)]
    with pytest.raises(UserError, match="no text column 'body'"):
        read_labelled_text(path, text_field="body", label_field="polarity")


def test_named_labels_without_label_list_is_a_user_error(tmp_path):
    path = write(tmp_path / "data.tsv", "text\tlabel\ngood\tpositive\nbad\tnegative\n")
    with pytest.raises(UserError, match=r"skipped 2 \(unknown_label=2\).*--config.data.labels="):
        read_labelled_text(path)


def test_empty_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="empty"):
        read_labelled_text(write(tmp_path / "data.tsv", ""))


@pytest.mark.skipif(not SHARED_SST2.is_dir(), reason="../shared/data/sentiment/sst2 is not present")
@pytest.mark.parametrize(("split", "size"), [("train", 67_349), ("validation", 872), ("test", 1_821)])
def test_shared_sst2(split, size):
    """The real SST-2 files: label first, CRLF train file, a `content` header in dev/test; nothing skipped."""
    records, skips = read_labelled_text(SHARED_SST2, split=split)
    assert len(records) == size and skips.total == 0
    assert {label for _, label in records} == {0, 1}
    assert all(text == text.strip() and "\r" not in text for text, _ in records)


# ----------------------------------------------------------------------------------------------------------
# tfds: through tfds.data_source, without TensorFlow


@pytest.fixture(scope="module")
def tfds():
    return pytest.importorskip("tensorflow_datasets")


@pytest.mark.parametrize(("name", "key"), [("glue/sst2", "sentence"), ("imdb_reviews", "text")])
def test_tfds_mock_data(tfds, name, key):
    """``mock_data(policy=USE_CODE)`` fakes the array_record data source from the builder's features."""
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        records = tfds_text.load_tfds_text(name, "train", data_dir=None)
        assert len(records) == len(tfds_text.open_data_source(name, "train"))
        with pytest.raises(UserError, match=f"no text feature 'body'.*'{key}'"):
            tfds_text.load_tfds_text(name, "train", data_dir=None, text_key="body")
    assert 0 < len(records) <= 6
    assert all(isinstance(t, str) and t and isinstance(y, int) and y in (0, 1) for t, y in records)


def _prepare_tiny_reviews(tfds, data_dir: pathlib.Path) -> None:
    """A real array_record data set written by TFDS itself (no TensorFlow), read back from files only."""

    class AttnJaxTinyReviews(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version("1.0.0")
        # No source file to find checksums next to (finding it needs importlib_resources, see tfds#11212).
        code_path = None

        def _info(self):
            features = {"text": tfds.features.Text(), "label": tfds.features.ClassLabel(names=["neg", "pos"])}
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            rows = [("très bien", 1), ("awful", 0), ("  ", 1), ("fine", 1)]
            for i, (text, label) in enumerate(rows):
                yield i, {"text": text, "label": label}

    AttnJaxTinyReviews(data_dir=str(data_dir), file_format="array_record").download_and_prepare()


def test_tfds_reads_prepared_array_record_files(tfds, tmp_path, caplog):
    _prepare_tiny_reviews(tfds, tmp_path)
    with caplog.at_level(logging.INFO, logger=tfds_text.__name__):
        records = tfds_text.load_tfds_text(
            "attn_jax_tiny_reviews", "train", data_dir=str(tmp_path), download=False
        )
    assert sorted(records) == [("awful", 0), ("fine", 1), ("très bien", 1)]
    assert "skipped 1 (empty_text=1)" in caplog.text
    with pytest.raises(UserError, match=r"no split 'validation' \(Unknown split"):
        tfds_text.load_tfds_text("attn_jax_tiny_reviews", "validation", data_dir=str(tmp_path))


def test_tfds_unknown_name(tfds, tmp_path):
    with pytest.raises(UserError, match=r"Unknown TFDS data set 'no_such_set_xyz'.*files: or builtin:"):
        tfds_text.load_tfds_text("no_such_set_xyz", "train", data_dir=str(tmp_path))
    with pytest.raises(UserError, match="Unknown config in tfds:glue/no_such_config"):
        tfds_text.load_tfds_text("glue/no_such_config", "train", data_dir=str(tmp_path))


def test_tfds_not_prepared_without_download(tfds, tmp_path):
    with pytest.raises(UserError) as error:
        tfds_text.load_tfds_text("glue/sst2", "train", data_dir=str(tmp_path), download=False)
    message = str(error.value)
    assert "not prepared" in message and "\n" not in message
    assert "tfds build glue/sst2 --data_dir DIR --file_format array_record" in message
    assert "--config.data.tfds_data_dir=DIR" in message


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (ConnectionError("Max retries exceeded"), "could not be downloaded.*tfds build glue/sst2"),
        (
            ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow"),
            r"pip install -e '\.\[tf\]'",
        ),
        (ModuleNotFoundError("No module named 'foo_bar'", name="foo_bar"), "pip install foo_bar.*tfds build"),
    ],
)
def test_tfds_download_failures_become_user_errors(tfds, tmp_path, monkeypatch, failure, expected):
    """No real download: preparing the data set fails the way it does offline or without a module."""

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", fail)
    with pytest.raises(UserError, match=expected):
        tfds_text.load_tfds_text("glue/sst2", "train", data_dir=str(tmp_path))
