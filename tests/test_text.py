"""nncore.data.text: PTB and tiny-shakespeare readers on the shipped excerpt (and the full files
when present), Vocabulary, batchify and bptt_batches, and errors."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from nncore.data import text as T
from tests.helpers import shared_data_dir

SUBSET = T.text_subset_dir()


def test_subset_files_match_readme_checksums():
    readme = (SUBSET / "README.md").read_text()
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt", "tinyshakespeare.txt"):
        digest = hashlib.sha256((SUBSET / name).read_bytes()).hexdigest()
        assert digest in readme, name


def test_ptb_subset_counts_and_vocab():
    c = T.PennTreebank()
    lines = (SUBSET / "ptb.train.txt").read_text().splitlines()
    assert len(c.train) == sum(len(ln.split()) + 1 for ln in lines) == 44328
    assert len(c.vocab) == 4988
    assert c.dictionary is c.vocab
    # vocabulary in order of first appearance; <eos> after the first line's words
    first = lines[0].split()
    assert c.vocab.idx2word[: len(first)] == first
    assert c.vocab.idx2word[len(first)] == T.EOS
    assert c.vocab.decode(c.train[: len(first) + 1]) == first + [T.EOS]
    assert (c.train == c.vocab[T.EOS]).sum() == 2000
    # excerpt: unknown valid/test words map to <unk>
    assert len(c.valid) == 7060 and len(c.test) == 6642
    assert c.valid.dtype == np.int64 and c.valid.max() < len(c.vocab)


def test_unknown_word_raises_key_error_naming_it(tmp_path):
    (tmp_path / "ptb.train.txt").write_text(" a b \n c a \n")
    (tmp_path / "ptb.valid.txt").write_text(" a zebra \n")
    (tmp_path / "ptb.test.txt").write_text(" b \n")
    with pytest.raises(KeyError, match="zebra"):
        T.PennTreebank(tmp_path)
    (tmp_path / "ptb.train.txt").write_text(" a b <unk> \n c a \n")
    c = T.PennTreebank(tmp_path, unk="<unk>")
    assert c.vocab.idx2word == ["a", "b", "<unk>", T.EOS, "c"]
    np.testing.assert_array_equal(c.valid, [0, 2, 3])
    np.testing.assert_array_equal(c.test, [1, 3])


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "ptb.train.txt").write_text("   \n")
    with pytest.raises(ValueError, match="empty"):
        T.PennTreebank(tmp_path)
    with pytest.raises(FileNotFoundError, match="nope"):
        T.PennTreebank(tmp_path / "nope")
    (tmp_path / "tinyshakespeare.txt").write_text("")
    with pytest.raises(ValueError, match="empty"):
        T.Shakespeare(tmp_path)


def test_shakespeare_subset():
    s = T.Shakespeare()
    text = (SUBSET / "tinyshakespeare.txt").read_text()
    assert len(s.vocab) == len(set(text)) == 61
    assert s.vocab.idx2word == sorted(set(text))
    assert len(s.train) == int(len(text) * 0.9) and len(s.train) + len(s.valid) == len(text)
    assert s.decode(s.train[:14]) == "First Citizen:"
    np.testing.assert_array_equal(s.encode("First"), s.train[:5])


def test_full_files_when_present():
    root = shared_data_dir()
    if root is None or not (root / "text" / "ptb.train.txt").exists():
        pytest.skip("full text corpora not available")
    c = T.PennTreebank(root / "text")
    assert (len(c.train), len(c.valid), len(c.test), len(c.vocab)) == (929589, 73760, 82430,
                                                                       10000)
    s = T.Shakespeare(root / "text")
    assert len(s.vocab) == 65 and len(s.valid) == 111540


def test_batchify_and_bptt():
    ids = np.arange(23)
    data = T.batchify(ids, 4)
    assert data.shape == (5, 4) and data.dtype == np.int64 and data.flags.c_contiguous
    np.testing.assert_array_equal(data[:, 1], np.arange(5, 10))
    chunks = list(T.bptt_batches(data, 2))
    assert [c[0].shape for c in chunks] == [(2, 4), (2, 4)]
    for inp, tgt in chunks:
        np.testing.assert_array_equal(tgt.data, inp.data + 1)
    chunks = list(T.bptt_batches(T.batchify(ids, 2), 5))   # T=11: 5, 5
    assert [c[0].shape[0] for c in chunks] == [5, 5]
    chunks = list(T.bptt_batches(T.batchify(ids, 1), 5))   # T=23: 5, 5, 5, 5, 2
    assert [c[0].shape[0] for c in chunks] == [5, 5, 5, 5, 2]
    with pytest.raises(ValueError, match="too few"):
        T.batchify(ids, 24)
    with pytest.raises(ValueError, match="batch_size"):
        T.batchify(ids, 0)
    with pytest.raises(TypeError, match="integer"):
        T.batchify(ids.astype(np.float32), 2)
    with pytest.raises(ValueError, match="bptt"):
        list(T.bptt_batches(data, 0))


def test_vocabulary_basics():
    v = T.Vocabulary(["x", "y", "x"])
    assert len(v) == 2 and "x" in v and v["y"] == 1
    assert v.add("z") == 2 and v.add("x") == 0
    with pytest.raises(IndexError, match="out of range"):
        v.decode([3])
    with pytest.raises(KeyError, match="'q'"):
        v.encode(["q"])
    with pytest.raises(KeyError, match="unknown-word token"):
        v.encode(["q"], unk="<unk>")


def _example():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "text_lstm.py"
    spec = importlib.util.spec_from_file_location("text_lstm_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("extra", [[], ["--tied"], ["--char", "--sample-length", "30"]])
def test_text_lstm_example_smoke(extra, capsys):
    ex = _example()
    result = ex.main(["--emsize", "8", "--nhid", "8", "--epochs", "1", "--max-batches", "3",
                      "--log-interval", "0", "--bptt", "10", "--eval-batch-size", "40",
                      *extra])
    (row,) = result["history"]
    assert np.isfinite(row["valid_ppl"]) and row["tokens_per_s"] > 0
    out = capsys.readouterr().out
    assert "valid ppl" in out
    if "--char" in extra:
        assert "sample:" in out
    else:
        assert np.isfinite(row["test_ppl"])
