"""Cut the CIFAR-10 subset shipped in ``nncore/data/cifar_subset/`` from the binary batches.

Takes the first ``--train`` (default 2000) records of ``data_batch_1.bin`` and the first
``--test`` (default 500) records of ``test_batch_first1000.bin`` (itself the first 1,000 records
of the official ``test_batch.bin``), unchanged and in their original order, and writes them
xz-compressed (preset 9 | extreme, CRC64) as ``data_batch_1_first<N>.bin.xz`` and
``test_batch_first<M>.bin.xz``. CIFAR pixels compress poorly with gzip (~92%); xz gets ~76%.
Rerunning with the same liblzma gives byte-identical files. Prints the README table
(sha256 of the sources and outputs, class counts, first labels).

    python tools/make_cifar_subset.py --src /work/shared/data/cifar10
"""
from __future__ import annotations

import argparse
import hashlib
import lzma
from pathlib import Path

import numpy as np

RECORD = 3073  # 1 label byte + 3 * 32 * 32 pixel bytes


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cut(src: Path, count: int) -> bytes:
    raw = src.read_bytes()
    if len(raw) % RECORD:
        raise ValueError(f"{src}: size {len(raw)} is not a multiple of {RECORD}")
    if count * RECORD > len(raw):
        raise ValueError(f"{src}: asked for {count} records, it holds {len(raw) // RECORD}")
    return raw[: count * RECORD]


def main() -> None:
    repo = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=repo.parent / "shared" / "data" / "cifar10")
    parser.add_argument("--dst", type=Path, default=repo / "nncore" / "data" / "cifar_subset")
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=500)
    args = parser.parse_args()
    args.dst.mkdir(parents=True, exist_ok=True)
    jobs = [("data_batch_1.bin", f"data_batch_1_first{args.train}.bin.xz", args.train),
            ("test_batch_first1000.bin", f"test_batch_first{args.test}.bin.xz", args.test)]
    rows = []
    for src_name, dst_name, count in jobs:
        src = args.src / src_name
        payload = cut(src, count)
        packed = lzma.compress(payload, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64,
                               preset=9 | lzma.PRESET_EXTREME)
        (args.dst / dst_name).write_bytes(packed)
        labels = np.frombuffer(payload, np.uint8).reshape(count, RECORD)[:, 0]
        print(f"{dst_name}: {count} records; first ten labels {' '.join(map(str, labels[:10]))};"
              f" class counts 0..9: {', '.join(str(c) for c in np.bincount(labels, minlength=10))}")
        rows.append((src_name, sha256_bytes(src.read_bytes()), dst_name, len(packed),
                     sha256_bytes(packed), len(payload), sha256_bytes(payload)))
    print("\n| file | source | source sha256 | bytes | sha256 | decompressed bytes "
          "| decompressed sha256 |")
    print("| --- | --- | --- | ---: | --- | ---: | --- |")
    for src_name, src_sha, dst_name, size, sha, raw_size, raw_sha in rows:
        print(f"| `{dst_name}` | `{src_name}` | `{src_sha}` | {size:,} | `{sha}` | {raw_size:,} "
              f"| `{raw_sha}` |")


if __name__ == "__main__":
    main()
