"""Plain-text tables of benchmark records: cell formatting, display units, the results table."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["SPREAD_FLAG", "display_value", "format_cell", "format_table", "results_table"]

SPREAD_FLAG = 0.10  # cells whose spread exceeds this are marked with '~'


def format_cell(value: float | None, spread: float | None = None, fmt: str = "{:.3f}") -> str:
    """`value` formatted, '~' appended when its spread exceeds SPREAD_FLAG, '-' when None."""
    if value is None:
        return "-"
    text = fmt.format(value)
    if spread is not None and spread > SPREAD_FLAG:
        text += "~"
    return text


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
                 left: int = 1) -> str:
    """Aligned plain-text table: the first `left` columns left-aligned, the rest right."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"format_table: row {row} has {len(row)} cells, expected "
                             f"{len(headers)}")
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [c.ljust(w) if i < left else c.rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def display_value(rec: dict) -> float | None:
    """The number a table shows for a record, in its unit."""
    if "median" not in rec:
        return None
    median = rec["median"]
    unit = rec["unit"]
    if unit == "ms":
        return median * 1e3
    if unit == "us":
        return median * 1e6
    if unit == "GFLOP/s":
        return rec["work"] / median / 1e9
    if unit == "GB/s":  # work = bytes read + written by one call
        return rec["work"] / median / 1e9
    if unit == "samples/s":
        return rec["batch"] / median
    return median


def _auto_fmt(value: float | None) -> str:
    if value is None or value >= 1000:
        return "{:,.0f}"
    if value >= 100:
        return "{:.1f}"
    if value >= 10:
        return "{:.2f}"
    return "{:.3f}"


def results_table(records: Sequence[dict], backends: Sequence[str] | None = None) -> str:
    """One row per (case, threads): a column per backend, then time ratios against nncore
    (numpy/nncore > 1 means nncore is faster). '~' marks a spread above 10%."""
    good = [r for r in records if "median" in r]
    if backends is None:
        seen = {r["backend"] for r in records}
        known = ("nncore", "numpy", "torch")
        backends = [b for b in known if b in seen] + sorted(seen - set(known))
    others = [b for b in backends if b != "nncore"]
    rows: dict[tuple, dict] = {}
    for r in good:
        rows.setdefault((r["family"], r["case"], r["threads"]), {})[r["backend"]] = r
    headers = ["case", "threads", "unit", *backends, *[f"{b}/nncore" for b in others]]
    table = []
    for (family, case, threads), cells in rows.items():
        units = [cells[b]["unit"] for b in cells]
        views = [units[0]] + (["samples/s"] if any(cells[b].get("batch") for b in cells)
                              else [])
        for unit in views:
            label = f"{family}/{case}" if unit == units[0] else f"{family}/{case} samples/s"
            row: list[Any] = [label, threads, unit]
            for b in backends:
                rec = cells.get(b)
                if rec is None:
                    row.append("-")
                else:
                    value = display_value({**rec, "unit": unit})
                    row.append(format_cell(value, rec["spread"], _auto_fmt(value)))
            row.extend(ratio_cells(cells, others))
            table.append(row)
    return format_table(headers, table) + errors_footer(records)


def ratio_cells(cells: dict, others: Sequence[str]) -> list[str]:
    """Time ratios other/nncore (> 1: nncore faster) for the records `cells` (backend ->
    record) of one row; '-' where a side is missing, '~' where either spread is above 10%."""
    base = cells.get("nncore")
    out = []
    for b in others:
        rec = cells.get(b)
        if rec is None or base is None:
            out.append("-")
        else:
            out.append(format_cell(rec["median"] / base["median"],
                                   max(rec["spread"], base["spread"]), "{:.2f}x"))
    return out


def errors_footer(records: Sequence[dict], with_family: bool = True) -> str:
    """The 'not measured' lines for the error records among `records` ('' when none)."""
    errors = [r for r in records if "error" in r]
    if not errors:
        return ""
    return "\n\nnot measured:\n" + "\n".join(
        f"  {r['family'] + '/' if with_family else ''}{r['case'] or '*'} {r['backend']} "
        f"t={r['threads']}: "
        f"{r['error'].strip().splitlines()[-1] if r['error'].strip() else '?'}"
        for r in errors)
