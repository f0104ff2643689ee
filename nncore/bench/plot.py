"""PNG bar charts of the speed ratios in a benchmark JSON file (matplotlib, optional extra).

    python -m nncore.bench.plot results.json --out docs/plots

One chart per thread count: for every case, the ratio other-time / nncore-time against each
other backend (bars above the dashed line at 1.0 mean nncore is faster), on a log axis.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def ratios(records: list[dict]) -> dict[int, dict[str, dict[str, float]]]:
    """{threads: {backend: {case: other_median / nncore_median}}} for measured cells."""
    cells: dict[tuple, dict[str, float]] = defaultdict(dict)
    for r in records:
        if "median" in r:
            cells[(r["threads"], f"{r['family']}/{r['case']}")][r["backend"]] = r["median"]
    out: dict[int, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for (threads, case), by_backend in cells.items():
        base = by_backend.get("nncore")
        if not base:
            continue
        for backend, median in by_backend.items():
            if backend != "nncore":
                out[threads][backend][case] = median / base
    return out


def plot(json_path: str, out_dir: str) -> list[Path]:
    """Charts of the records in a benchmark JSON file (see plot_records)."""
    return plot_records(json.loads(Path(json_path).read_text())["records"], out_dir)


def plot_records(records: list[dict], out_dir: str) -> list[Path]:
    """Write one PNG per thread count into out_dir; return their paths."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise SystemExit("plotting needs matplotlib: pip install 'nncore[plot]'") from e
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for threads, by_backend in sorted(ratios(records).items()):
        cases = sorted({c for v in by_backend.values() for c in v})
        backends = sorted(by_backend)
        fig, ax = plt.subplots(figsize=(9, 0.35 * len(cases) * len(backends) + 1.5))
        height = 0.8 / max(len(backends), 1)
        for i, backend in enumerate(backends):
            ys = [j + i * height for j in range(len(cases))]
            ax.barh(ys, [by_backend[backend].get(c, 0) for c in cases], height=height,
                    label=f"{backend} time / nncore time")
        ax.axvline(1.0, color="k", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain)
        ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.set_yticks([j + height * (len(backends) - 1) / 2 for j in range(len(cases))])
        ax.set_yticklabels(cases, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("speed ratio (> 1: nncore faster)")
        ax.set_title(f"nncore speed ratios, {threads} thread(s)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"ratios_{threads}thread.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", help="benchmark JSON written by run.py --json")
    parser.add_argument("--out", default="bench_plots", help="output folder for PNG files")
    args = parser.parse_args()
    for path in plot(args.json, args.out):
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
