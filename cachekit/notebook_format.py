"""How the tuning panel shows numbers and results: percentages, thousands separators, "—" for no value,
the styled stats table, an invalidation's outcome, and the panel's CSS. Plain functions over plain data
(no widgets): :mod:`cachekit.notebook` re-exports ``fmt_ratio``, ``fmt_count`` and ``stats_table``."""

from __future__ import annotations

import html
import math
from typing import Any

__all__ = ["CSS", "STATS_COLUMNS", "describe_result", "fmt_count", "fmt_ratio", "stats_table"]


def fmt_ratio(value: Any) -> str:
    """``0.8734`` → ``"87.3 %"``; ``nan``/``None`` → ``"—"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.1%}".replace("%", " %")


def fmt_count(value: Any) -> str:
    """``12345`` → ``"12,345"``; floats get 3 decimals; ``nan``/``None`` → ``"—"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.3f}"


def describe_result(result: Any) -> str:
    """An :class:`~cachekit.InvalidationResult` as HTML lines: the keys removed per region (the first 20)
    and the generations advanced."""
    parts = [f"{html.escape(r)}: {len(keys):,} key(s) {html.escape(', '.join(keys[:20]))}"
             for r, keys in result.keys.items() if keys]
    parts += [f"{html.escape(r)}: generation of {html.escape(', '.join(g))} advanced"
              for r, g in result.generations.items() if g]
    return "<br>".join(parts)


#: the columns of the panel's stats table (the rows of ``runtime.stats.rows()``)
STATS_COLUMNS = ("region", "provider", "hits", "misses", "hit_ratio", "sets", "deletes", "errors", "evictions",
                 "loads", "stale_hits", "l1_hits")


def stats_table(rows: Any) -> str:
    """The stats rows as a styled HTML table: percentages, thousands separators, "—" for no value."""
    head = "".join(f"<th>{c.replace('_', ' ')}</th>" for c in STATS_COLUMNS)
    body = []
    for row in rows:
        cells = []
        for column in STATS_COLUMNS:
            value = row.get(column)
            if column == "hit_ratio":
                text, cls = fmt_ratio(value), "num"
            elif column in ("region", "provider"):
                text, cls = html.escape(str(value)), "txt"
            else:
                text, cls = fmt_count(value), "num"
            cells.append(f"<td class='{cls}'>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table class='ck'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


CSS = """<style>
table.ck { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
table.ck th { background: #263238; color: #fff; padding: 4px 10px; text-align: right; font-weight: 500; }
table.ck th:first-child, table.ck td.txt { text-align: left; }
table.ck td { padding: 3px 10px; border-bottom: 1px solid #e0e0e0; text-align: right;
              font-variant-numeric: tabular-nums; }
table.ck tbody tr:nth-child(even) { background: #f5f7f8; }
.ck-diff pre { background: #fff8e1; padding: 6px; max-height: 240px; overflow: auto; }
</style>"""
