"""Plain-text tables of scores per method, as the benchmark scripts print them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def method_table(
    rows: Mapping[str, Sequence[str]], columns: Sequence[str], name_width: int, width: int
) -> str:
    """A header line ("method", then `columns` right-aligned in `width`) and one line per row:
    the method's name left-aligned in `name_width`, then its cells, already formatted; every
    column is one space apart."""
    lines = [f"{'method':{name_width}s} " + " ".join(f"{c:>{width}s}" for c in columns)]
    lines += [f"{name:{name_width}s} " + " ".join(cells) for name, cells in rows.items()]
    return "\n".join(lines)
