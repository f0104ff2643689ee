"""Train a CNN on CIFAR-10 with Adam: LeNet-5 by default, or a small ResNet (`--resnet`).

LeNet-5: conv5x5(3->6) - ReLU - maxpool2 - conv5x5(6->16) - ReLU - maxpool2 - 400 - 120 - 84 - 10.
ResNet: conv3x3(3->16)-BN-ReLU, BasicBlocks 16, 32 (stride 2), 64 (stride 2), global average
pool, Linear(64, 10); a BasicBlock is conv3x3-BN-ReLU-conv3x3-BN plus the shortcut (identity,
or 1x1 conv + BN when the shape changes), then ReLU.

    python examples/cifar_cnn.py                              # shipped subset: 2000 / 500 images
    python examples/cifar_cnn.py --data ../shared/data/cifar10           # batch 1 -> batch 2
    python examples/cifar_cnn.py --data ../shared/data/cifar10 --resnet --augment

With `--data DIR`, training uses data_batch_1.bin, evaluation data_batch_2.bin (held out), and
the final model is also scored on test_batch_first1000.bin when present.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

import nncore as nc
from nncore import nn
from nncore.data import CIFAR10


def lenet5() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN + shortcut, then ReLU (He et al., 2016)."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: nc.Tensor) -> nc.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def small_resnet(widths: tuple[int, ...] = (16, 32, 64)) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, padding=1, bias=False),
                               nn.BatchNorm2d(widths[0]), nn.ReLU()]
    in_ch = widths[0]
    for i, w in enumerate(widths):
        layers.append(BasicBlock(in_ch, w, stride=1 if i == 0 else 2))
        in_ch = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_ch, 10)]
    return nn.Sequential(*layers)


@nc.no_grad()
def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray,
             device: str = "cpu") -> tuple[float, float]:
    """Accuracy over (x, y) in batches of 500, and images/s of the forward pass."""
    model.eval()
    correct = 0
    start = time.perf_counter()
    for i in range(0, len(x), 500):
        logits = model(nc.from_numpy(x[i:i + 500]).to(device)).cpu()
        correct += int((logits.argmax(dim=1).numpy() == y[i:i + 500]).sum())
    elapsed = time.perf_counter() - start
    model.train()
    return correct / len(x), len(x) / elapsed


def load(args: argparse.Namespace) -> dict:
    if args.data is None:
        train = CIFAR10(train=True)
        evals = {"subset test (500)": CIFAR10(train=False)}
    else:
        root = Path(args.data)
        train = CIFAR10(root, files=["data_batch_1.bin"])
        evals = {"data_batch_2": CIFAR10(root, files=["data_batch_2.bin"])}
        if (root / "test_batch_first1000.bin").is_file():
            evals["test_batch_first1000"] = CIFAR10(root, files=["test_batch_first1000.bin"])
    return {"train": train, "evals": evals}


def train(args: argparse.Namespace) -> dict:
    nc.manual_seed(args.seed)
    data = load(args)
    train_set = data["train"]
    evals = {name: ds.arrays() for name, ds in data["evals"].items()}
    x_plain, y_train = train_set.arrays()
    first_eval = next(iter(evals))
    print(f"CIFAR-10 from {args.data or 'the shipped subset'}: {len(y_train)} training images; "
          f"eval on {', '.join(f'{k} ({len(v[1])})' for k, v in evals.items())}; "
          f"threads={nc.get_num_threads()}")
    model = (small_resnet() if args.resnet else lenet5()).to(args.device)
    n_params = sum(p.data.size for p in model.parameters())
    print(f"model: {'small ResNet' if args.resnet else 'LeNet-5'}, {n_params:,} parameters")
    optimizer = nc.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    order_rng = np.random.default_rng(args.seed)
    steps_total = args.epochs * math.ceil(len(y_train) / args.batch_size)
    step = 0
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        order = order_rng.permutation(len(y_train))
        running, correct, seen = 0.0, 0, 0
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            xb = train_set.augment_batch(train_set.data[idx]) if args.augment else x_plain[idx]
            yb = y_train[idx]
            for group in optimizer.param_groups:  # cosine decay over the whole run
                group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / steps_total))
            logits = model(nc.from_numpy(xb).to(args.device))
            loss = nn.functional.cross_entropy(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += loss.item() * len(idx)
            correct += int((logits.detach().cpu().numpy().argmax(axis=1) == yb).sum())
            seen += len(idx)
            step += 1
        elapsed = time.perf_counter() - start
        acc, _ = evaluate(model, *evals[first_eval], args.device)
        print(f"epoch {epoch:2d}  train loss {running / seen:.4f}  train acc "
              f"{100 * correct / seen:.2f}%  {first_eval} acc {100 * acc:.2f}%  "
              f"({elapsed:.1f} s, {seen / elapsed:,.0f} images/s training)", flush=True)
    results = {}
    for name, (x, y) in evals.items():
        acc, speed = evaluate(model, x, y, args.device)
        results[name] = acc
        print(f"final {name}: accuracy {100 * acc:.2f}% ({speed:,.0f} images/s inference)")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None,
                        help="directory with data_batch_1.bin, data_batch_2.bin "
                             "(and test_batch_first1000.bin); default: the shipped subset")
    parser.add_argument("--resnet", action="store_true", help="small ResNet instead of LeNet-5")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (needs the CUDA build)")
    parser.add_argument("--augment", action="store_true",
                        help="random crop (pad 4) + horizontal flip of training images")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default 5 on the subset, 10 on the real batches")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=None,
                        help="default 1e-3 (LeNet-5) / 2e-3 (ResNet)")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.epochs is None:
        args.epochs = 5 if args.data is None else 10
    if args.lr is None:
        args.lr = 2e-3 if args.resnet else 1e-3
    if args.threads:
        nc.set_num_threads(args.threads)
    train(args)


if __name__ == "__main__":
    main()
