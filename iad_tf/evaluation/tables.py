"""Plain-text and Markdown tables for the terminal and reports (no third-party formatter)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def fmt(value: Any, digits: int = 3) -> str:
    """A cell: floats with ``digits`` decimals, ``None``/NaN as '-', everything else ``str``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def _cells(rows: Sequence[Sequence[Any]], digits: int) -> list[list[str]]:
    return [[fmt(v, digits) for v in row] for row in rows]


def text_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3, title: str = ""
) -> str:
    """Aligned text table: first column left-aligned, the others right-aligned."""
    cells = _cells(rows, digits)
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))

    def line(values: Sequence[str]) -> str:
        parts = [
            v.ljust(widths[i]) if i == 0 else v.rjust(widths[i]) for i, v in enumerate(values)
        ]
        return "  ".join(parts).rstrip()

    out = [title] if title else []
    out.append(line(list(headers)))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    """GitHub-flavoured Markdown table (numbers right-aligned)."""
    cells = _cells(rows, digits)
    align = [":---"] + ["---:"] * (len(headers) - 1)
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    out.extend("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells)
    return "\n".join(out)
