"""Data loading: datasets, a batching DataLoader, and MNIST (a 6,000/1,000 subset ships)."""
from .cifar import CIFAR10, load_cifar10, random_crop_flip
from .dataloader import DataLoader, default_collate
from .dataset import Dataset, Subset, TensorDataset, random_split
from .distributed import DistributedSampler
from .mnist import MNIST, load_mnist
from .text import PennTreebank, Shakespeare, Vocabulary, batchify, bptt_batches

__all__ = [
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "MNIST",
    "Subset",
    "TensorDataset",
    "default_collate",
    "load_mnist",
    "random_split",
    "PennTreebank", "Shakespeare", "Vocabulary", "batchify", "bptt_batches",
    "CIFAR10", "load_cifar10", "random_crop_flip",
]
