"""Train a small CNN on MNIST with Adam:
Conv(1->32, 3x3) - BatchNorm - ReLU - MaxPool(2) - Dropout(0.25) - Flatten -
Linear(5408, 128) - ReLU - Dropout(0.5) - Linear(128, 10).

    python examples/mnist_cnn.py                                   # shipped 6k/1k subset
    python examples/mnist_cnn.py --data ../shared/data/mnist       # full MNIST, 2 convs, >= 99.0%
    python examples/mnist_cnn.py --data ../shared/data/mnist --convs 1 --epochs 15 --shift 1
                                                                   # one conv: 99.13%

`--plain` drops the BatchNorm and Dropout layers (the bare Conv-ReLU-MaxPool-Linear model);
`--convs 2` (the default on full data) adds a second stage Conv(32->64, 3x3)-BN-ReLU-MaxPool
before Linear(1600, 128);
`--shift N` trains on images randomly shifted by up to N pixels (zero padding).
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

import nncore as nc
from nncore import nn
from nncore.data import MNIST, random_crop_flip


def build_model(plain: bool = False, two_conv: bool = False) -> nn.Module:
    if plain:
        return nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(32 * 13 * 13, 128), nn.ReLU(), nn.Linear(128, 10))
    if two_conv:  # a second conv stage: 13x13x32 -> 11x11x64 -> pool -> 5x5x64
        return nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.25),
            nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(128, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(32 * 13 * 13, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, 10))


@nc.no_grad()
def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray,
             device: str = "cpu") -> tuple[float, float]:
    """Mean cross-entropy and accuracy over (x, y), in batches of 500."""
    model.eval()
    total_loss, correct = 0.0, 0
    for i in range(0, len(x), 500):
        logits = model(nc.from_numpy(x[i:i + 500]).to(device))
        total_loss += nn.functional.cross_entropy(logits, y[i:i + 500], reduction="sum").item()
        correct += int((logits.cpu().argmax(dim=1).numpy() == y[i:i + 500]).sum())
    model.train()
    return total_loss / len(x), correct / len(x)


def train(args: argparse.Namespace) -> tuple[nn.Module, float]:
    nc.manual_seed(args.seed)
    x_train, y_train = MNIST(args.data, train=True).arrays()
    x_test, y_test = MNIST(args.data, train=False).arrays()
    source = args.data or "the shipped subset"
    print(f"MNIST from {source}: {len(x_train)} train / {len(x_test)} test images; "
          f"threads={nc.get_num_threads()}")
    model = build_model(args.plain, args.convs == 2).to(args.device)
    print(model)
    optimizer = nc.optim.Adam(model.parameters(), lr=args.lr)
    shuffle_rng = np.random.default_rng(args.seed)
    background = float(x_train.min())  # the normalised value of a 0 pixel
    steps_per_epoch = math.ceil(len(x_train) / args.batch_size)
    steps_total = args.epochs * steps_per_epoch
    step, best, total_time = 0, 0.0, 0.0
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        order = shuffle_rng.permutation(len(x_train))
        running, seen = 0.0, 0
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            xb = x_train[idx]
            if args.shift:
                xb = random_crop_flip(xb - background, args.shift, flip=False) + background
            for group in optimizer.param_groups:  # cosine decay over the whole run
                group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / steps_total))
            loss = nn.functional.cross_entropy(model(nc.from_numpy(xb).to(args.device)),
                                               y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += loss.item() * len(idx)
            seen += len(idx)
            step += 1
        elapsed = time.perf_counter() - start
        total_time += elapsed
        test_loss, test_acc = evaluate(model, x_test, y_test, args.device)
        best = max(best, test_acc)
        print(f"epoch {epoch:2d}  train loss {running / seen:.4f}  test loss {test_loss:.4f}  "
              f"test acc {100 * test_acc:.2f}%  ({elapsed:.1f} s, {seen / elapsed:,.0f} "
              f"images/s)", flush=True)
    print(f"final test accuracy {100 * test_acc:.2f}% (best {100 * best:.2f}%) after "
          f"{args.epochs} epochs, {total_time:.0f} s of training")
    return model, test_acc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None,
                        help="directory with the original MNIST IDX files (.gz or raw); "
                             "default: the subset shipped with nncore")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default 3 on the shipped subset, 4 on full data")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--shift", type=int, default=0,
                        help="random shift augmentation in pixels (default 0)")
    parser.add_argument("--plain", action="store_true",
                        help="the bare one-conv model: no BatchNorm / Dropout")
    parser.add_argument("--convs", type=int, choices=(1, 2), default=None,
                        help="conv stages: 1, or 2 adding Conv(32->64, 3x3)-BN-ReLU-MaxPool "
                             "(default 1 on the shipped subset, 2 on full data)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (needs the CUDA build)")
    args = parser.parse_args()
    if args.epochs is None:
        args.epochs = 3 if args.data is None else 4
    if args.convs is None:
        args.convs = 1 if args.data is None else 2
    if args.threads:
        nc.set_num_threads(args.threads)
    train(args)


if __name__ == "__main__":
    main()
