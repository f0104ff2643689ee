"""Word-level LSTM language model on Penn Treebank (or a character model on tiny-shakespeare):
Embedding -> 2-layer LSTM with dropout -> Linear decoder (optionally tied to the embedding),
truncated BPTT with the hidden state carried and detached between chunks, gradient clipping,
perplexity on valid and test after every epoch.

    python examples/text_lstm.py                                   # shipped PTB excerpt, <1 min
    python examples/text_lstm.py --data ../shared/data/text --epochs 6     # full PTB
    python examples/text_lstm.py --char                            # shakespeare excerpt + sample
    python examples/text_lstm.py --char --data ../shared/data/text --epochs 3

Word-model defaults follow PyTorch's word_language_model example (SGD lr 20, clip 0.25, batch
20, bptt 35, dropout 0.2, lr / 4 whenever validation loss does not improve); --char uses Adam
(lr 0.002) by default.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

try:
    import nncore as nc
except ImportError:  # run from a source checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import nncore as nc
from nncore import nn
from nncore.data import PennTreebank, Shakespeare, batchify, bptt_batches


class LanguageModel(nn.Module):
    """Embedding -> LSTM -> dropout -> Linear over the vocabulary."""

    def __init__(self, ntoken: int, ninp: int, nhid: int, nlayers: int, dropout: float = 0.2,
                 tied: bool = False) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tied:
            if nhid != ninp:
                raise ValueError(f"--tied needs emsize == nhid, got {ninp} and {nhid}")
            self.decoder.weight = self.encoder.weight
        self.nhid, self.nlayers = nhid, nlayers
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if not tied:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(self, inp: nc.Tensor, hidden: Any) -> tuple[nc.Tensor, Any]:
        emb = self.drop(self.encoder(inp))                   # (T, B, E)
        output, hidden = self.rnn(emb, hidden)                # (T, B, H)
        output = self.drop(output)
        logits = self.decoder(output.reshape(-1, self.nhid))  # (T*B, V)
        return logits, hidden

    def init_hidden(self, batch: int) -> tuple[nc.Tensor, nc.Tensor]:
        shape = (self.nlayers, batch, self.nhid)
        device = self.decoder.weight.device
        return nc.zeros(shape, device=device), nc.zeros(shape, device=device)


def detach(hidden: Any) -> Any:
    """Cut the graph at the chunk boundary, keep the values (truncated BPTT)."""
    return tuple(h.detach() for h in hidden)


@nc.no_grad()
def evaluate(model: LanguageModel, data: np.ndarray, bptt: int) -> float:
    """Mean cross-entropy per token over a (T, B) stream, hidden state carried throughout."""
    model.eval()
    hidden = model.init_hidden(data.shape[1])
    total, count = 0.0, 0
    for inp, target in bptt_batches(data, bptt):
        logits, hidden = model(inp, hidden)
        n = target.data.size
        total += nn.functional.cross_entropy(logits, target.data.reshape(-1)).item() * n
        count += n
    model.train()
    return total / max(count, 1)


def train_epoch(model: LanguageModel, data: np.ndarray, optimizer: Any, args: Any,
                epoch: int) -> tuple[float, int, float]:
    """One pass over the (T, B) stream; returns (mean train loss, tokens, seconds)."""
    model.train()
    hidden = model.init_hidden(data.shape[1])
    total, tokens, t0 = 0.0, 0, time.perf_counter()
    log_loss, log_n = 0.0, 0
    nbatches = (data.shape[0] - 1 + args.bptt - 1) // args.bptt
    for i, (inp, target) in enumerate(bptt_batches(data, args.bptt)):
        if args.max_batches and i >= args.max_batches:
            break
        if args.deadline and time.perf_counter() > args.deadline:
            print(f"  time limit reached after {i} of {nbatches} batches", flush=True)
            break
        hidden = detach(hidden)
        optimizer.zero_grad()
        logits, hidden = model(inp, hidden)
        loss = nn.functional.cross_entropy(logits, target.data.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        n = target.data.size
        value = loss.item()
        total += value * n
        tokens += n
        log_loss += value
        log_n += 1
        if args.log_interval and (i + 1) % args.log_interval == 0:
            dt = time.perf_counter() - t0
            lr = optimizer.param_groups[0]["lr"]
            print(f"  epoch {epoch} batch {i + 1}/{nbatches}  lr {lr:g}"
                  f"  loss {log_loss / log_n:.3f}  ppl {math.exp(log_loss / log_n):8.2f}"
                  f"  {tokens / dt:,.0f} tokens/s", flush=True)
            log_loss, log_n = 0.0, 0
    return total / max(tokens, 1), tokens, time.perf_counter() - t0


@nc.no_grad()
def sample(model: LanguageModel, corpus: Shakespeare, length: int, temperature: float,
           seed: int) -> str:
    """Generate `length` characters one step at a time, starting from a newline."""
    model.eval()
    rng = np.random.default_rng(seed)
    hidden = model.init_hidden(1)
    token = corpus.vocab["\n"] if "\n" in corpus.vocab else 0
    out = []
    for _ in range(length):
        logits, hidden = model(nc.tensor([[token]]), hidden)
        z = logits.cpu().numpy()[0].astype(np.float64) / temperature
        p = np.exp(z - z.max())
        token = int(rng.choice(len(p), p=p / p.sum()))
        out.append(token)
    return corpus.decode(out)


def parse_args(argv: Any = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None,
                   help="folder with ptb.{train,valid,test}.txt (or tinyshakespeare.txt with "
                        "--char); default: the excerpt shipped in nncore/data/text_subset")
    p.add_argument("--char", action="store_true", help="character model on tiny-shakespeare")
    p.add_argument("--emsize", type=int, default=200)
    p.add_argument("--nhid", type=int, default=200)
    p.add_argument("--nlayers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--tied", action="store_true", help="decoder weight = embedding weight")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default=None,
                   help="default: sgd for words, adam for --char")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 20 for SGD, 0.002 for Adam)")
    p.add_argument("--clip", type=float, default=0.25, help="max gradient norm")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--eval-batch-size", type=int, default=10)
    p.add_argument("--bptt", type=int, default=35)
    p.add_argument("--max-batches", type=int, default=0, help="cap batches per epoch (0: all)")
    p.add_argument("--time-limit", type=float, default=0,
                   help="stop training after this many seconds (then evaluate and end)")
    p.add_argument("--seed", type=int, default=1111)
    p.add_argument("--threads", type=int, default=None, help="nncore threads (default: all)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (needs the CUDA build)")
    p.add_argument("--log-interval", type=int, default=200)
    p.add_argument("--sample-length", type=int, default=400)
    p.add_argument("--temperature", type=float, default=0.8)
    return p.parse_args(argv)


def main(argv: Any = None) -> dict:
    args = parse_args(argv)
    args.deadline = time.perf_counter() + args.time_limit if args.time_limit else 0.0
    args.optimizer = args.optimizer or ("adam" if args.char else "sgd")
    if args.lr is None:
        args.lr = 20.0 if args.optimizer == "sgd" else 2e-3
    if args.threads:
        nc.set_num_threads(args.threads)
    nc.manual_seed(args.seed)
    if args.char:
        corpus = Shakespeare(args.data)
        splits = {"valid": corpus.valid}
    else:
        corpus = PennTreebank(args.data)
        splits = {"valid": corpus.valid, "test": corpus.test}
    source = args.data or "the shipped excerpt"
    print(f"{type(corpus).__name__} from {source}: vocab {len(corpus.vocab)}, train "
          f"{len(corpus.train):,} tokens; threads={nc.get_num_threads()}")
    train = batchify(corpus.train, args.batch_size)
    evals = {k: batchify(v, args.eval_batch_size) for k, v in splits.items()}
    model = LanguageModel(len(corpus.vocab), args.emsize, args.nhid, args.nlayers,
                          args.dropout, args.tied).to(args.device)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"model: emsize {args.emsize}, nhid {args.nhid}, {args.nlayers} layers, dropout "
          f"{args.dropout}, tied={args.tied}, {nparams:,} parameters; {args.optimizer} lr "
          f"{args.lr}, clip {args.clip}, batch {args.batch_size}, bptt {args.bptt}")
    if args.optimizer == "adam":
        optimizer = nc.optim.Adam(model.parameters(), lr=args.lr)
    else:
        optimizer = nc.optim.SGD(model.parameters(), lr=args.lr)
    best, history = math.inf, []
    for epoch in range(1, args.epochs + 1):
        train_loss, tokens, seconds = train_epoch(model, train, optimizer, args, epoch)
        losses = {k: evaluate(model, v, args.bptt) for k, v in evals.items()}
        row = {"epoch": epoch, "train_ppl": math.exp(train_loss), "tokens_per_s":
               tokens / seconds, "lr": optimizer.param_groups[0]["lr"], "seconds": seconds,
               **{f"{k}_ppl": math.exp(v) for k, v in losses.items()}}
        history.append(row)
        shown = "  ".join(f"{k} ppl {math.exp(v):8.2f}" for k, v in losses.items())
        print(f"epoch {epoch}: train ppl {row['train_ppl']:8.2f}  {shown}  "
              f"{row['tokens_per_s']:,.0f} tokens/s  ({seconds:.1f} s, lr {row['lr']:g})",
              flush=True)
        if args.deadline and time.perf_counter() > args.deadline:
            break
        if losses["valid"] < best:
            best = losses["valid"]
        else:  # anneal as PyTorch's example does
            for group in optimizer.param_groups:
                group["lr"] /= 4.0
    if args.char:
        print("\nsample:\n" + sample(model, corpus, args.sample_length, args.temperature,
                                     args.seed))
    return {"history": history}


if __name__ == "__main__":
    main()
