"""The targets of issues 13 and 14, checked against one run: ``import`` time, and the summary table.

Every row of the issue's table is a :class:`Target`: where its number comes from (a scenario row of
this run, or the hit-ratio section), the bar, and whether the run meets it. The table at the top of
``docs/benchmarks.md`` is generated from these, never written by hand.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import Row, Scenario

__all__ = ["TARGETS", "Target", "evaluate", "import_scenario", "markdown", "print_targets"]

ROOT = Path(__file__).resolve().parent.parent
_PROBE = "import time; t = time.perf_counter(); {0}; print(time.perf_counter() - t)"


def _import_seconds(statement: str) -> float:
    done = subprocess.run([sys.executable, "-c", _PROBE.format(statement)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def import_scenario(repeats: int) -> Scenario:
    """``import cachekit`` and ``import pydantic``, each in a fresh interpreter, alternately ``repeats`` times."""
    s = Scenario("import", "Import time (fresh interpreter)",
                 f"`python -c 'import X'`, {repeats} fresh subprocesses each, alternating; the time of the import "
                 "statement only (interpreter start-up excluded). Ratio: the row's time / `import pydantic`'s.",
                 paired=True)
    ref = Row("import pydantic", "pydantic", reference=True, note="cachekit's one heavy dependency")
    row = Row("import cachekit", "cachekit", note="the package's public names load lazily, as pydantic's do")
    # what a program pays once it uses them: the facade (pydantic models, pydantic-settings, the runtime)
    used = Row("from cachekit import Cache", "cachekit", note="the facade and the config models loaded")
    model = Row("from pydantic import BaseModel", "pydantic", note="pydantic's models loaded")
    rows = (ref, row, model, used)
    statements = ("import pydantic", "import cachekit", "from pydantic import BaseModel", "from cachekit import Cache")
    for i in range(repeats):
        order = list(zip(rows, statements, strict=True))
        for r, statement in (order if i % 2 == 0 else order[::-1]):
            r.times.append(_import_seconds(statement))
    for r in rows:
        r.ns_min, r.ns_median = min(r.times) * 1e9, statistics.median(r.times) * 1e9
        r.number = 1
    s.rows += list(rows)
    s.finish()
    return s


@dataclass(frozen=True)
class Target:
    """One row of the issue's table: ``ratio`` of row (``library``, ``label``) of ``scenario`` against ``bar``.

    ``kind``: ``"speed"`` (a peer's time / cachekit's, at least ``bar``), ``"cost"`` (the row's time /
    the reference's, at most ``bar``), ``"hit"`` (a hit ratio at least the named row's) or ``"gap"``
    (OPT's hit ratio minus cachekit's, at most ``bar`` points).
    """

    case: str
    goal: str
    kind: str
    bar: float
    scenario: str = ""
    library: str = ""
    label: str = ""


TINYLFU = 'MemoryDriver(policy="tinylfu")'
THEINE = "Cache (W-TinyLFU)"
OPT = "Belady OPT"
IRM = "true top-k (IRM optimum)"  # hit_ratio.IRM: the ceiling of a cache that does not see the future

TARGETS: list[Target] = [
    Target("memory region `get` hit", "≥ 2x dogpile.cache memory region", "speed", 2.0,
           "zipf_memory_get", "dogpile.cache", "memory region.get(k)"),
    Target("memory region `get` hit", "≥ 3x cachetools `TTLCache`", "speed", 3.0,
           "zipf_memory_get", "cachetools", "TTLCache[k]"),
    Target("memory region `put` (overwrite, TTL)", "≥ 1.2x dogpile `set`", "speed", 1.2,
           "zipf_memory_put", "dogpile.cache", "memory region.set(k, v)"),
    Target("memory region `put` (overwrite, TTL)", "≥ 1.2x `TTLCache`", "speed", 1.2,
           "zipf_memory_put", "cachetools", "TTLCache[k] = v"),
    Target("`@cached` hit (one int argument)", "≥ 1.0x cachetools `@cached(TTLCache)`", "speed", 1.0,
           "zipf_cached", "cachetools", "@cached(TTLCache) f(k)"),
    Target("Redis `get`", "≥ 0.95x raw GET + pickle", "speed", 0.95,
           "zipf_redis_get", "redis-py", "GET + pickle.loads (floor)"),
    Target("Redis `put`", "≥ 0.95x raw SET EX + pickle", "speed", 0.95,
           "zipf_redis_put", "redis-py", "SET EX + pickle.dumps (floor)"),
    Target("Redis `get_many(100)`", "≥ 0.9x raw MGET", "speed", 0.9,
           "zipf_redis_get_many", "redis-py", "MGET + pickle.loads each (floor)"),
    Target("Memcached `get`", "≥ 0.9x raw pymemcache", "speed", 0.9,
           "zipf_memcached_get", "pymemcache", "get + pickle.loads (floor)"),
    Target("Memcached `put`", "≥ 0.9x raw pymemcache", "speed", 0.9,
           "zipf_memcached_put", "pymemcache", "set(expire) + pickle.dumps (floor)"),
    Target("Memcached `get_many(100)`", "≥ 0.9x raw pymemcache", "speed", 0.9,
           "zipf_memcached_get_many", "pymemcache", "get_many + pickle.loads each (floor)"),
    Target("file `get`", "≥ 1.0x diskcache", "speed", 1.0, "zipf_file_get", "diskcache", "Cache.get(k)"),
    Target("file `put`", "≥ 1.0x diskcache", "speed", 1.0, "zipf_file_put", "diskcache", "Cache.set(k, v, expire)"),
    Target("L1-warm region on Redis", "keep ≥ 20x raw GET", "speed", 20.0,
           "zipf_redis_l1", "redis-py", "GET + pickle.loads (floor)"),
    Target("hit ratio, Zipf(0.9) trace, capacity 10 %", "`tinylfu` ≥ theine", "hit", 0.0, "zipf", "theine", THEINE),
    Target("hit ratio, Zipf(0.9) trace, capacity 10 %", "aim: `tinylfu` within 5 points of OPT", "gap", 5.0,
           "zipf", "bound", OPT),
    Target("hit ratio, the same with scans", "`tinylfu` ≥ theine", "hit", 0.0, "zipf+scans", "theine", THEINE),
    Target("stats on vs off, memory `get`", "≤ 5 %", "cost", 1.05,
           "zipf_stats", "cachekit", "region.get(k), stats on"),
    Target("`import cachekit`", "≤ 1.5x `import pydantic`", "cost", 1.5, "import", "cachekit", "import cachekit"),
]


def _row(scenarios: list[Scenario], t: Target) -> Row | None:
    s = next((s for s in scenarios if s.key == t.scenario), None)
    if s is None:
        return None
    return next((r for r in s.rows if r.library == t.library and r.label == t.label), None)


def _hit(hit_ratio: dict[str, Any] | None, trace: str, library: str, policy: str) -> float | None:
    if not hit_ratio or trace not in hit_ratio.get("traces", {}):
        return None
    for r in hit_ratio["traces"][trace]["rows"]:
        if r["library"] == library and r["policy"] == policy:
            return r["ratio"]  # type: ignore[no-any-return]
    return None


def evaluate(scenarios: list[Scenario], hit_ratio: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Each target with its measured value (``None``: not measured in this run) and ``met``."""
    out = []
    for t in TARGETS:
        value: float | None = None
        measured = "not measured"
        if t.kind in ("speed", "cost"):
            row = _row(scenarios, t)
            if row is not None and row.ratio is not None:
                value = row.ratio
                spread = (f" ({row.ratio_min:.2f}..{row.ratio_max:.2f})"
                          if row.ratio_min is not None and row.ratio_max is not None else "")
                if t.kind == "cost" and t.scenario == "zipf_stats":
                    measured = f"{(value - 1) * 100:+.1f} %" + spread.replace("(", "(ratio ")
                else:
                    measured = f"{value:.2f}x{spread}"
            elif row is not None:
                measured = f"n/a: {row.note}"
        else:
            mine = _hit(hit_ratio, t.scenario, "cachekit", TINYLFU)
            other = _hit(hit_ratio, t.scenario, t.library, t.label)
            if mine is not None and other is not None:
                if t.kind == "hit":
                    value = (mine - other) * 100
                    measured = f"tinylfu {mine:.2%}, theine {other:.2%}"
                else:
                    value = (other - mine) * 100
                    measured = f"OPT {other:.2%} - tinylfu {mine:.2%} = {value:.1f} points"
                    best = _hit(hit_ratio, t.scenario, "bound", IRM)
                    if best is not None:
                        measured += (f"; no cache that does not see the future gets nearer than "
                                     f"{(other - best) * 100:.1f} (IRM optimum {best:.2%})")
        if value is None:
            met = None
        elif t.kind in ("speed", "hit"):
            met = value >= t.bar
        else:
            met = value <= t.bar
        out.append({"case": t.case, "target": t.goal, "measured": measured, "value": value, "met": met})
    return out


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else ("met" if met else "**not met**")


def print_targets(rows: list[dict[str, Any]]) -> None:
    """The summary as text."""
    print("\n== Targets (issues 13 and 14): cachekit's speed-up = peer time / cachekit time, median of paired repeats")
    for r in rows:
        verdict = _verdict(r["met"]).replace("*", "")
        print(f"   {r['case']:<42} {r['target']:<40} {r['measured']:<44} {verdict}")
    met = sum(1 for r in rows if r["met"])
    print(f"   {met} of {len(rows)} met")


def markdown(rows: list[dict[str, Any]], mode: str) -> list[str]:
    """The targets section of docs/benchmarks.md."""
    met = sum(1 for r in rows if r["met"])
    lines = [
        "## Targets",
        "",
        f"Each row of the table of issue 14 (and issue 13's stats bar), measured in this run ({mode}): "
        f"**{met} of {len(rows)} met**. A speed ratio is a peer's time / cachekit's time on the Zipf workload "
        "(above 1: cachekit is faster), the median of repeats timed side by side, with min..max; the hit "
        "ratios come from the hit-ratio section below.",
        "",
        "| case | target | measured | verdict |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {r['case']} | {r['target']} | {r['measured']} | {_verdict(r['met'])} |" for r in rows]
    lines.append("")
    return lines
