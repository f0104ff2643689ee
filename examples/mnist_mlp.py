"""Train the 784-128-64-10 ReLU MLP on MNIST with Adam, then time one training step of
nncore against the NumPy baseline of the same step.

    python examples/mnist_mlp.py                                  # shipped 6k/1k subset, <1 min
    python examples/mnist_mlp.py --data ../shared/data/mnist --epochs 20   # full MNIST, >= 98%
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

import nncore as nc
from nncore import nn
from nncore.data import MNIST, DataLoader, TensorDataset

try:
    from tqdm import tqdm
except ImportError:  # progress bars are optional
    tqdm = None


def build_model() -> nn.Module:
    return nn.Sequential(
        nn.Linear(784, 128), nn.ReLU(),
        nn.Linear(128, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )


@nc.no_grad()
def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray,
             device: str = "cpu") -> tuple[float, float]:
    """Mean cross-entropy and accuracy over (x, y), in batches of 1000."""
    model.eval()
    total_loss, correct = 0.0, 0
    for i in range(0, len(x), 1000):
        logits = model(nc.from_numpy(x[i:i + 1000]).to(device))
        total_loss += nn.functional.cross_entropy(logits, y[i:i + 1000], reduction="sum").item()
        correct += int((logits.cpu().argmax(dim=1).numpy() == y[i:i + 1000]).sum())
    model.train()
    return total_loss / len(x), correct / len(x)


def train(args: argparse.Namespace) -> nn.Module:
    nc.manual_seed(args.seed)
    x_train, y_train = MNIST(args.data, train=True).arrays(flatten=True)
    x_test, y_test = MNIST(args.data, train=False).arrays(flatten=True)
    source = args.data or "the shipped subset"
    print(f"MNIST from {source}: {len(x_train)} train / {len(x_test)} test images; "
          f"threads={nc.get_num_threads()}, simd={nc.build_info()['kernels']['gemm']}")

    model = build_model().to(args.device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = nc.optim.Adam(model.parameters(), lr=args.lr)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size,
                        shuffle=True, generator=args.seed)
    steps_total = args.epochs * len(loader)
    step = 0
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        running, seen = 0.0, 0
        batches = loader
        if tqdm is not None and not args.no_progress:
            batches = tqdm(loader, desc=f"epoch {epoch}/{args.epochs}", leave=False,
                           unit="batch")
        for xb, yb in batches:
            # cosine learning-rate decay over the whole run
            for group in optimizer.param_groups:
                group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / steps_total))
            loss = loss_fn(model(xb.to(args.device)), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += loss.item() * len(yb)
            seen += len(yb)
            step += 1
        elapsed = time.perf_counter() - start
        test_loss, test_acc = evaluate(model, x_test, y_test, args.device)
        print(f"epoch {epoch:2d}  train loss {running / seen:.4f}  test loss {test_loss:.4f}  "
              f"test acc {100 * test_acc:.2f}%  ({elapsed:.1f} s, {seen / elapsed:,.0f} "
              f"samples/s)")
    return model


def compare_with_numpy(repeats: int) -> None:
    """Time one training step (batch 64, Adam) of nncore and of the NumPy baseline."""
    from nncore.bench.bench_mlp import compare_step_in_process

    result = compare_step_in_process(repeats=repeats)
    print(f"\nOne training step, MLP 784-128-64-10, batch 64, Adam, float32, "
          f"{nc.get_num_threads()} thread(s), median of {repeats} repeats:")
    print(f"  nncore  {result['nncore_ms']:.3f} ms/step")
    print(f"  NumPy   {result['numpy_ms']:.3f} ms/step")
    print(f"  nncore is {result['numpy_ms'] / result['nncore_ms']:.2f}x the speed of the "
          f"NumPy baseline")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None,
                        help="directory with the original MNIST IDX files (.gz or raw); "
                             "default: the subset shipped with nncore")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default 8 on the shipped subset, 20 on full data")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (needs the CUDA build)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--bench-repeats", type=int, default=7,
                        help="repeats of the closing nncore-vs-NumPy timing (0 to skip)")
    args = parser.parse_args()
    if args.epochs is None:
        args.epochs = 8 if args.data is None else 20
    if args.threads:
        nc.set_num_threads(args.threads)
    train(args)
    if args.bench_repeats > 0:
        compare_with_numpy(args.bench_repeats)


if __name__ == "__main__":
    main()
