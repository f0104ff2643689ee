"""Cut the MNIST subset shipped in ``nncore/data/mnist_subset/`` from the original IDX files.

Takes the first ``--train`` (default 6000) training and first ``--test`` (default 1000) test
images and labels, in their original order, rewrites the IDX header count and writes gzip files
with the original names. gzip is written with mtime=0, no stored file name and level 9, so
running the script twice gives byte-identical files. It also prints the README table
(sha256 of sources and outputs, class counts).

    python tools/make_mnist_subset.py --src /work/shared/data/mnist
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import struct
from pathlib import Path

import numpy as np

IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
SPLITS = {"train": "train", "t10k": "test"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cut_idx(raw: bytes, count: int, header_ints: int, item_bytes: int) -> bytes:
    """Keep the first `count` items of an IDX file, rewriting the count field."""
    header = list(struct.unpack(f">{header_ints}I", raw[: 4 * header_ints]))
    if count > header[1]:
        raise ValueError(f"asked for {count} items but the file holds {header[1]}")
    header[1] = count
    start = 4 * header_ints
    return struct.pack(f">{header_ints}I", *header) + raw[start : start + count * item_bytes]


def write_gzip(path: Path, payload: bytes) -> None:
    """gzip with a fixed header (mtime 0, no name) so the output is reproducible."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(payload)
    path.write_bytes(buf.getvalue())


def main() -> None:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    repo = here.parent
    parser.add_argument("--src", type=Path, default=repo.parent / "shared" / "data" / "mnist")
    parser.add_argument("--dst", type=Path, default=repo / "nncore" / "data" / "mnist_subset")
    parser.add_argument("--train", type=int, default=6000)
    parser.add_argument("--test", type=int, default=1000)
    args = parser.parse_args()
    counts = {"train": args.train, "t10k": args.test}
    args.dst.mkdir(parents=True, exist_ok=True)

    for prefix, count in counts.items():
        img_name, lab_name = f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"
        img_raw = gzip.decompress((args.src / img_name).read_bytes())
        lab_raw = gzip.decompress((args.src / lab_name).read_bytes())
        assert struct.unpack(">I", img_raw[:4])[0] == IMAGE_MAGIC, img_name
        assert struct.unpack(">I", lab_raw[:4])[0] == LABEL_MAGIC, lab_name
        img_cut = cut_idx(img_raw, count, header_ints=4, item_bytes=28 * 28)
        lab_cut = cut_idx(lab_raw, count, header_ints=2, item_bytes=1)
        write_gzip(args.dst / img_name, img_cut)
        write_gzip(args.dst / lab_name, lab_cut)

        labels = np.frombuffer(lab_cut, np.uint8, offset=8)
        print(f"{SPLITS[prefix]}: {count} items, class counts 0..9:",
              ", ".join(str(c) for c in np.bincount(labels, minlength=10)))

    print("\n| file | source sha256 | subset bytes | subset sha256 |")
    print("| --- | --- | ---: | --- |")
    for prefix in counts:
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{prefix}-{kind}-ubyte.gz"
            out = args.dst / name
            print(f"| `{name}` | `{sha256(args.src / name)}` | {out.stat().st_size:,} "
                  f"| `{sha256(out)}` |")


if __name__ == "__main__":
    main()
