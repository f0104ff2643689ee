"""Text corpora for language models: Penn Treebank (word level), tiny-shakespeare (character
level), and the stream batching used for truncated backpropagation through time.

A small real excerpt of both ships in `nncore/data/text_subset/` (see its README); pass the
folder holding the full files as `root` to use them instead.

    corpus = PennTreebank(root)               # ids of train/valid/test, vocabulary from train
    train = batchify(corpus.train, 20)        # (T, B) int64: B parallel streams
    for inp, target in bptt_batches(train, 35):
        ...                                   # inp, target: (<=35, B); target = inp shifted by 1
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..tensor import Tensor

__all__ = ["Vocabulary", "PennTreebank", "Corpus", "Shakespeare", "batchify", "bptt_batches",
           "text_subset_dir", "EOS"]

EOS = "<eos>"
PTB_FILES = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")
SHAKESPEARE_FILE = "tinyshakespeare.txt"


def text_subset_dir() -> Path:
    """The folder of the shipped excerpts (PTB first lines, tiny-shakespeare first ~100 KB)."""
    return Path(__file__).resolve().parent / "text_subset"


class Vocabulary:
    """A token <-> id table; ids are given in order of first `add`.

    `word2idx` maps token -> id, `idx2word` lists the tokens by id (PyTorch example names).
    """

    def __init__(self, tokens: Iterable[str] = ()) -> None:
        self.word2idx: dict[str, int] = {}
        self.idx2word: list[str] = []
        for t in tokens:
            self.add(t)

    def add(self, token: str) -> int:
        """The id of `token`, adding it at the end if new."""
        idx = self.word2idx.get(token)
        if idx is None:
            idx = self.word2idx[token] = len(self.idx2word)
            self.idx2word.append(token)
        return idx

    def __len__(self) -> int:
        return len(self.idx2word)

    def __contains__(self, token: object) -> bool:
        return token in self.word2idx

    def __getitem__(self, token: str) -> int:
        return self.word2idx[token]

    def encode(self, tokens: Iterable[str], unk: str | None = None,
               source: str = "input") -> np.ndarray:
        """int64 ids of `tokens`. An unknown token raises KeyError naming it (and `source`),
        unless `unk` names a token of the vocabulary to map it to."""
        w2i = self.word2idx
        unk_id = None
        if unk is not None:
            if unk not in w2i:
                raise KeyError(f"unknown-word token {unk!r} is not in the vocabulary")
            unk_id = w2i[unk]
        ids = []
        for t in tokens:
            i = w2i.get(t, unk_id)
            if i is None:
                raise KeyError(f"word {t!r} in {source} is not in the vocabulary "
                               f"({len(self)} words); pass unk='<unk>' to map unknown words")
            ids.append(i)
        return np.array(ids, dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of `ids` (an IndexError names an id outside the vocabulary)."""
        out = []
        for i in np.asarray(ids).reshape(-1).tolist():
            if not 0 <= i < len(self.idx2word):
                raise IndexError(f"id {i} is out of range for a vocabulary of {len(self)}")
            out.append(self.idx2word[i])
        return out

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"text corpus file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise ValueError(f"text corpus file is empty: {path}")
    return text


def _word_tokens(path: Path) -> list[str]:
    """Whitespace tokens of every line, with EOS after each (non-blank or blank) line."""
    tokens: list[str] = []
    for line in _read_text(path).splitlines():
        tokens.extend(line.split())
        tokens.append(EOS)
    return tokens


class PennTreebank:
    """Word-level corpus in the Penn Treebank layout (Mikolov's `ptb.{train,valid,test}.txt`).

    Every line becomes its whitespace tokens followed by `<eos>`. The vocabulary is built from
    the training file in order of first appearance (10,000 words on the full PTB). A word of
    the valid/test files missing from it raises KeyError naming the word, unless `unk` names
    the token to map it to (the shipped excerpt needs unk="<unk>": cut from the full files,
    its valid/test lines hold words its 2,000 training lines lack).

    Attributes: `vocab` (also `dictionary`), and `train`, `valid`, `test` as int64 id arrays.

    Args:
        root: the folder with the three files; None: the shipped excerpt (and unk defaults to
            "<unk>").
        unk: token that unknown valid/test words map to, or None to raise.
        files: the three file names (train, valid, test).
    """

    def __init__(self, root: str | Path | None = None, unk: str | None = None,
                 files: tuple[str, str, str] = PTB_FILES) -> None:
        if root is None:
            root = text_subset_dir()
            unk = "<unk>" if unk is None else unk
        self.root = Path(root)
        train_tokens = _word_tokens(self.root / files[0])
        self.vocab = Vocabulary(train_tokens)
        self.train = self.vocab.encode(train_tokens, source=files[0])
        self.valid = self.vocab.encode(_word_tokens(self.root / files[1]), unk, files[1])
        self.test = self.vocab.encode(_word_tokens(self.root / files[2]), unk, files[2])

    @property
    def dictionary(self) -> Vocabulary:
        return self.vocab

    def __repr__(self) -> str:
        return (f"PennTreebank({self.root}: vocab {len(self.vocab)}, tokens train "
                f"{len(self.train)} / valid {len(self.valid)} / test {len(self.test)})")


Corpus = PennTreebank


class Shakespeare:
    """Character-level corpus (tiny-shakespeare): the vocabulary is the sorted set of the
    characters of the whole file (65 on the full file), the first `train_fraction` of the
    characters are `train`, the rest `valid` (the usual 90/10 split).

    Attributes: `vocab` (Vocabulary of single characters), `train`, `valid` int64 arrays;
    `decode(ids)` returns a string.
    """

    def __init__(self, root: str | Path | None = None, train_fraction: float = 0.9,
                 filename: str = SHAKESPEARE_FILE) -> None:
        if not 0 < train_fraction < 1:
            raise ValueError(f"Shakespeare: train_fraction must be in (0, 1), got "
                             f"{train_fraction}")
        self.root = Path(text_subset_dir() if root is None else root)
        text = _read_text(self.root / filename)
        self.vocab = Vocabulary(sorted(set(text)))
        lut = np.full(max(map(ord, self.vocab.idx2word)) + 1, -1, np.int64)
        for i, ch in enumerate(self.vocab.idx2word):
            lut[ord(ch)] = i
        ids = lut[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)]
        n = int(len(ids) * train_fraction)
        self.train = ids[:n].copy()
        self.valid = ids[n:].copy()

    def encode(self, text: str) -> np.ndarray:
        return self.vocab.encode(text, source="text")

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.vocab.decode(ids))

    def __repr__(self) -> str:
        return (f"Shakespeare({self.root}: vocab {len(self.vocab)}, chars train "
                f"{len(self.train)} / valid {len(self.valid)})")


def batchify(ids: np.ndarray | Tensor, batch_size: int) -> np.ndarray:
    """Cut a token stream into `batch_size` equal contiguous streams: (T, B) int64, column b
    holding tokens [b*T, (b+1)*T) of the input; the last len(ids) % B tokens are dropped."""
    data = ids.data if isinstance(ids, Tensor) else np.asarray(ids)
    if data.ndim != 1 or data.dtype.kind not in "iu":
        raise TypeError(f"batchify: expected a 1-D integer array of ids, got dtype "
                        f"{data.dtype} and shape {data.shape}")
    if batch_size < 1:
        raise ValueError(f"batchify: batch_size must be >= 1, got {batch_size}")
    T = len(data) // batch_size
    if T == 0:
        raise ValueError(f"batchify: {len(data)} tokens are too few for batch_size "
                         f"{batch_size}")
    return np.ascontiguousarray(data[: T * batch_size].astype(np.int64, copy=False)
                                .reshape(batch_size, T).T)


def bptt_batches(data: np.ndarray, bptt: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Consecutive (input, target) chunks of a (T, B) stream for truncated BPTT.

    input = data[i : i + L], target = data[i + 1 : i + 1 + L] with L = min(bptt, T - 1 - i),
    for i = 0, bptt, 2*bptt, ...; both int64 Tensors of shape (L, B).
    """
    data = data.data if isinstance(data, Tensor) else np.asarray(data)
    if data.ndim != 2:
        raise ValueError(f"bptt_batches: expected a (T, B) array, got shape {data.shape}")
    if bptt < 1:
        raise ValueError(f"bptt_batches: bptt must be >= 1, got {bptt}")
    T = data.shape[0]
    for i in range(0, T - 1, bptt):
        n = min(bptt, T - 1 - i)
        yield Tensor(np.ascontiguousarray(data[i:i + n])), \
            Tensor(np.ascontiguousarray(data[i + 1:i + 1 + n]))
