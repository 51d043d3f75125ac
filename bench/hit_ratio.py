"""Hit ratio of eviction policies on a Zipf trace, with and without scans (``bench/run.py`` section).

Two traces, replayed through every policy as cache-aside reads (``get``; on a miss, ``put``):

- **zipf**: 2M accesses, Zipf(0.9) over 1M keys (seeded);
- **zipf+scans**: the same, with 25k never-seen keys read once after every 100k accesses.

Capacity 100k entries (10 % of the keys). Beside cachetools ``LRUCache``/``LFUCache``, theine
(W-TinyLFU in Rust) and cachekit's ``MemoryDriver(policy="lru")`` / ``(policy="tinylfu")``, two
bounds: the **infinite cache** (every access but the first of each key hits) and **Belady OPT**
(evict the entry needed furthest in the future, or skip storing the new one if it is needed last),
and, for reference, a cache holding the most frequent keys of the whole trace from the start.

    .venv/bin/python bench/hit_ratio.py            # full size (a few minutes on a loaded machine)
    .venv/bin/python bench/hit_ratio.py --quick    # 1/10 of everything, well under a minute
    .venv/bin/python bench/hit_ratio.py --write    # also replace the section in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BEGIN = "<!-- BEGIN HIT RATIO -->"
#: the bound row of the best online policy (knows the distribution, not the trace)
IRM = "true top-k (IRM optimum)"
END = "<!-- END HIT RATIO -->"


@dataclass
class Sizes:
    keys: int = 1_000_000
    accesses: int = 2_000_000
    capacity: int = 100_000
    scan_every: int = 100_000
    scan_length: int = 25_000
    skew: float = 0.9
    seed: int = 42

    @classmethod
    def quick(cls) -> Sizes:
        return cls(keys=100_000, accesses=200_000, capacity=10_000, scan_every=10_000, scan_length=2_500)

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(keys=5_000, accesses=10_000, capacity=500, scan_every=1_000, scan_length=250)

    @classmethod
    def of(cls, mode: str) -> Sizes:
        """``"full"`` (the issue's trace), ``"quick"`` (1/10) or ``"smoke"`` (a test's)."""
        return {"quick": cls.quick, "smoke": cls.smoke}.get(mode, cls)()


def zipf_trace(sizes: Sizes) -> np.ndarray:
    """``accesses`` key ids drawn from Zipf(``skew``) over ``keys`` ids (rank order shuffled)."""
    return zipf_trace_and_ranking(sizes)[0]


def zipf_trace_and_ranking(sizes: Sizes) -> tuple[np.ndarray, np.ndarray]:
    """The trace of :func:`zipf_trace`, and every key id from the most probable to the least."""
    rng = np.random.default_rng(sizes.seed)
    weights = 1.0 / np.arange(1, sizes.keys + 1, dtype=np.float64) ** sizes.skew
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    ranks = np.searchsorted(cdf, rng.random(sizes.accesses), side="right")
    ranks = np.minimum(ranks, sizes.keys - 1)
    by_rank = rng.permutation(sizes.keys)
    return by_rank[ranks], by_rank  # popular keys are not the small ids


def with_scans(trace: np.ndarray, sizes: Sizes) -> np.ndarray:
    """After every ``scan_every`` accesses, ``scan_length`` ids never seen before, each read once."""
    parts = []
    fresh = sizes.keys
    for start in range(0, len(trace), sizes.scan_every):
        parts.append(trace[start:start + sizes.scan_every])
        if start + sizes.scan_every <= len(trace):
            parts.append(np.arange(fresh, fresh + sizes.scan_length))
            fresh += sizes.scan_length
    return np.concatenate(parts)


def infinite_hits(trace: np.ndarray) -> int:
    return int(len(trace) - len(np.unique(trace)))


def top_k_hits(trace: np.ndarray, capacity: int) -> int:
    """Hits of a cache holding, from the start, the ``capacity`` keys most frequent in the whole trace
    (frequency known in hindsight): the ceiling of a purely frequency-based policy on a stationary trace."""
    _, counts = np.unique(trace, return_counts=True)
    top = np.sort(counts)[::-1][:capacity]
    return int((top - 1).sum())


def irm_optimum_hits(trace: np.ndarray, by_rank: np.ndarray, capacity: int) -> int:
    """Hits of a cache that knows the distribution the trace is drawn from (not the trace): it keeps the
    ``capacity`` most probable keys, each stored on its first access. Under the independent reference
    model this is the best expected hit ratio of any policy that does not see the future (policy A0 of
    Aho, Denning and Ullman, 1971), so it is the ceiling of an online cache here; OPT and the top-k in
    hindsight see the future and sit above it."""
    wanted = np.isin(trace, by_rank[:capacity])
    return int(wanted.sum()) - len(np.unique(trace[wanted]))


def next_uses(trace: np.ndarray) -> np.ndarray:
    """For each position, the position of the next access of the same key (``len(trace)`` + i: never)."""
    n = len(trace)
    order = np.argsort(trace, kind="stable")
    ordered = trace[order]
    nxt = n + np.arange(n, dtype=np.int64)  # distinct "never again" values keep the heap total
    same = ordered[1:] == ordered[:-1]
    nxt[order[:-1][same]] = order[1:][same]
    return nxt


def belady_hits(trace: np.ndarray, capacity: int) -> int:
    """Belady's MIN with bypass: the optimal hit count of any policy with this capacity."""
    nxt = next_uses(trace).tolist()
    keys = trace.tolist()
    cached: dict[int, int] = {}  # key -> position of its next use
    heap: list[tuple[int, int]] = []  # (-next use, key), stale entries skipped
    push, pop = heapq.heappush, heapq.heappop
    hits = 0
    for key, nu in zip(keys, nxt, strict=True):
        if key in cached:
            hits += 1
        cached[key] = nu
        push(heap, (-nu, key))
        if len(cached) > capacity:
            while True:
                neg, victim = pop(heap)
                if cached.get(victim) == -neg:
                    del cached[victim]
                    break
    return hits


# -- policies: each replays ``keys`` (a list of str) and returns its hit count -----------------------
def _cachetools(kind: str) -> Callable[[list[str], int], int]:
    def replay(keys: list[str], capacity: int) -> int:
        import cachetools

        cache = getattr(cachetools, kind)(maxsize=capacity)
        get, miss, hits = cache.get, object(), 0
        for key in keys:
            if get(key, miss) is miss:
                cache[key] = 1
            else:
                hits += 1
        return hits

    return replay


def _theine(keys: list[str], capacity: int) -> int:
    from theine import Cache

    cache = Cache(capacity)
    get, put, hits = cache.get, cache.set, 0
    for key in keys:
        if get(key)[1]:
            hits += 1
        else:
            put(key, 1)
    return hits


def _cachekit(policy: str) -> Callable[[list[str], int], int]:
    def replay(keys: list[str], capacity: int) -> int:
        from cachekit.providers.base import MISSING
        from cachekit.providers.memory import MemoryDriver

        driver = MemoryDriver(max_size=capacity, policy=policy)
        get, put, hits = driver.get, driver.put, 0
        for key in keys:
            if get(key) is MISSING:
                put(key, 1)
            else:
                hits += 1
        assert len(driver) <= capacity
        return hits

    return replay


def _cachekit_policies() -> tuple[str, ...]:
    """Every policy the memory driver offers (a new one joins the table by itself)."""
    from cachekit.providers.memory import POLICIES as MEMORY_POLICIES

    return tuple(MEMORY_POLICIES)


POLICIES: list[tuple[str, str, Callable[[list[str], int], int]]] = [
    ("cachetools", "LRUCache", _cachetools("LRUCache")),
    ("cachetools", "LFUCache", _cachetools("LFUCache")),
    ("theine", "Cache (W-TinyLFU)", _theine),
    *[("cachekit", f'MemoryDriver(policy="{p}")', _cachekit(p)) for p in _cachekit_policies()],
]


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "n/a"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hit_ratios(quick: bool = False, log: Callable[[str], Any] = print, mode: str | None = None) -> dict[str, Any]:
    """Build both traces, compute the bounds, replay every policy; the result as plain data."""
    sizes = Sizes.of(mode or ("quick" if quick else "full"))
    started = time.monotonic()
    base, by_rank = zipf_trace_and_ranking(sizes)
    traces = {"zipf": base, "zipf+scans": with_scans(base, sizes)}
    top = int(max(int(t.max()) for t in traces.values())) + 1
    names = [f"key:{i}" for i in range(top)]
    result: dict[str, Any] = {
        "sizes": sizes.__dict__,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cpu_count": os.cpu_count(),
        "cpu": _cpu(),
        "platform": platform.platform(),
        "versions": {d: _version(d) for d in ("cachetools", "theine", "numpy")},
        "traces": {},
    }
    for label, trace in traces.items():
        n = len(trace)
        rows: list[dict[str, Any]] = []
        log(f"  {label}: {n:,} accesses, {len(np.unique(trace)):,} distinct keys, capacity {sizes.capacity:,}")
        t0 = time.monotonic()
        rows.append({"library": "bound", "policy": "infinite cache", "hits": infinite_hits(trace),
                     "seconds": round(time.monotonic() - t0, 1)})
        t0 = time.monotonic()
        rows.append({"library": "bound", "policy": "Belady OPT", "hits": belady_hits(trace, sizes.capacity),
                     "seconds": round(time.monotonic() - t0, 1)})
        t0 = time.monotonic()
        rows.append({"library": "bound", "policy": "top-k in hindsight", "hits": top_k_hits(trace, sizes.capacity),
                     "seconds": round(time.monotonic() - t0, 1)})
        t0 = time.monotonic()
        rows.append({"library": "bound", "policy": IRM, "hits": irm_optimum_hits(trace, by_rank, sizes.capacity),
                     "seconds": round(time.monotonic() - t0, 1)})
        keys = [names[i] for i in trace.tolist()]
        for library, policy, replay in POLICIES:
            t0 = time.monotonic()
            try:
                hits: int | None = replay(keys, sizes.capacity)
                note = ""
            except ImportError as exc:
                hits, note = None, f"n/a: {exc}"
            rows.append({"library": library, "policy": policy, "hits": hits, "note": note,
                         "seconds": round(time.monotonic() - t0, 1)})
        for row in rows:
            row["ratio"] = None if row["hits"] is None else row["hits"] / n
            log(f"    {row['library']:<11} {row['policy']:<32} "
                f"{'n/a' if row['ratio'] is None else format(row['ratio'], '7.2%'):>8}  ({row['seconds']} s)")
        result["traces"][label] = {"accesses": n, "rows": rows}
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def print_table(result: dict[str, Any]) -> None:
    s = result["sizes"]
    print(f"\n== Hit ratio: Zipf({s['skew']}) over {s['keys']:,} keys, {s['accesses']:,} accesses, "
          f"capacity {s['capacity']:,}; scans: {s['scan_length']:,} new keys every {s['scan_every']:,}")
    labels = list(result["traces"])
    print(f"   {'library':<11} {'policy':<32} " + " ".join(f"{label:>11}" for label in labels))
    for i, row in enumerate(result["traces"][labels[0]]["rows"]):
        cells = []
        for label in labels:
            r = result["traces"][label]["rows"][i]["ratio"]
            cells.append(f"{'n/a' if r is None else format(r, '.2%'):>11}")
        print(f"   {row['library']:<11} {row['policy']:<32} " + " ".join(cells))


def markdown(result: dict[str, Any]) -> list[str]:
    """The docs/benchmarks.md section (between markers, so ``--write`` can replace it)."""
    s = result["sizes"]
    labels = list(result["traces"])
    versions = ", ".join(f"{k} {v}" for k, v in result["versions"].items())
    lines = [
        BEGIN,
        "### Hit ratio: Zipf(0.9) with and without scans",
        "",
        f"Cache-aside replay (`get`; on a miss, `put`) of a seeded Zipf({s['skew']}) trace of "
        f"{s['accesses']:,} accesses over {s['keys']:,} keys, and of the same trace with "
        f"{s['scan_length']:,} never-seen keys read once after every {s['scan_every']:,} accesses; "
        f"capacity {s['capacity']:,} entries. *infinite cache* and *Belady OPT* (with bypass) are upper "
        "bounds, not caches; *top-k in hindsight* holds the capacity's most frequent keys of the whole "
        "trace from the start (the ceiling of a frequency-only policy on a stationary trace). "
        "OPT and the top-k in hindsight see the future; *true top-k (IRM optimum)* does not: it keeps the "
        "capacity's most probable keys of the distribution the trace is drawn from, each stored on its first "
        "access, the best expected hit ratio of any cache that does not see the future (policy A0 under the "
        "independent reference model; Aho, Denning and Ullman, 1971): the ceiling of a real cache here. "
        "Regenerate with `.venv/bin/python bench/hit_ratio.py --write` "
        "(or as part of `bench/run.py`).",
        "",
        f"Run: {result['date']}, {result['python']} on {result.get('platform', '?')}, "
        f"{result.get('cpu', '?')}, {result['cpu_count']} logical CPUs (shared with other work: hit ratios do "
        f"not depend on load); {versions}; {result['seconds']} s.",
        "",
        "| library | policy | " + " | ".join(f"{label} ({result['traces'][label]['accesses']:,})"
                                           for label in labels) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in labels) + " |",
    ]
    for i, row in enumerate(result["traces"][labels[0]]["rows"]):
        cells = []
        for label in labels:
            r = result["traces"][label]["rows"][i]["ratio"]
            cells.append("n/a" if r is None else f"{r:.2%}")
        name = f"`{row['policy']}`" if row["library"] != "bound" else f"*{row['policy']}*"
        lines.append(f"| {row['library']} | {name} | " + " | ".join(cells) + " |")
    lines += ["", END, ""]
    return lines


def write_section(result: dict[str, Any], page: Path = ROOT / "docs" / "benchmarks.md") -> None:
    """Replace (or append) the hit-ratio section of ``page``."""
    section = "\n".join(markdown(result))
    text = page.read_text() if page.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    page.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1/10 scale: 200k accesses, capacity 10k")
    parser.add_argument("--write", action="store_true", help="replace the section in docs/benchmarks.md")
    args = parser.parse_args(argv)
    print("hit ratio" + (" (quick)" if args.quick else ""))
    result = hit_ratios(quick=args.quick)
    print_table(result)
    print(f"done in {result['seconds']} s")
    if args.write:
        write_section(result)
        print("wrote docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
