"""The demo job behind ``cachekit demo``: a Zipf-like workload on the embedded default config.

:func:`demo` prints to stdout and returns the process exit code, so it can also be called from
Python or a test; :func:`run_demo_workload` drives any runtime and reports what it did.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .errors import require
from .facade import load

if TYPE_CHECKING:
    import pandas as pd

    from .runtime.runtime import Runtime

__all__ = ["DemoReport", "FakeDatabase", "demo", "plot_stats", "run_demo_workload", "zipf_weights"]

PathLike = str | os.PathLike[str]


class FakeDatabase:
    """A stand-in for a slow data source: it only counts how often the cache had to ask it."""

    def __init__(self) -> None:
        self.calls = 0

    def load_user(self, user_id: int) -> dict[str, Any]:
        """The "row" of a user."""
        self.calls += 1
        return {"id": user_id, "name": f"user-{user_id}", "team": user_id % 5}

    def load_report(self, day: int) -> dict[str, Any]:
        """An "expensive" daily report."""
        self.calls += 1
        return {"day": day, "total": day * 1_000 + 7}


def zipf_weights(n: int, s: float = 1.1) -> list[float]:
    """Weights ``1 / k**s`` for ranks ``1..n``: a few keys are hot, most are cold (Zipf-like)."""
    return [1.0 / (k**s) for k in range(1, n + 1)]


class DemoReport:
    """What :func:`run_demo_workload` did: the runtime (stats inside), requests, loader calls, and
    after how many requests each stats sample was taken."""

    def __init__(self, runtime: Runtime, requests: int, loader_calls: int, samples: list[int]) -> None:
        self.runtime = runtime
        self.requests = requests
        self.loader_calls = loader_calls
        self.samples = samples

    @property
    def hit_ratio(self) -> float:
        """Hits over lookups, all regions together (``nan`` when nothing was read)."""
        totals = self.runtime.stats.totals()
        lookups = totals["hits"] + totals["misses"]
        return totals["hits"] / lookups if lookups else float("nan")


def run_demo_workload(runtime: Runtime, requests: int = 5000, seed: int = 7) -> DemoReport:
    """Drive ``runtime`` with a deterministic, Zipf-like read-mostly workload.

    Three regions take part: ``users`` (undeclared, so it gets the default region's policy, with
    tags), ``reports`` (put on the ``disk`` file provider through the live config) and the
    ``default`` region (counters, puts and forgets). ``runtime.stats.sample()`` is recorded every
    ``requests // 20`` requests (``report.samples`` lists after how many), for the time series.
    """
    rng = random.Random(seed)
    db = FakeDatabase()
    users = runtime.region("users")
    reports = runtime.update_region("reports", provider="disk", ttl=3600)
    default = runtime.region()
    reports.flush()  # the file store survives between runs: start cold so that the run is repeatable
    runtime.stats.reset()

    user_ids = list(range(1, 501))
    user_weights = zipf_weights(len(user_ids))
    days = list(range(1, 31))
    day_weights = zipf_weights(len(days), 1.3)
    every = max(1, requests // 20)
    samples: list[int] = []

    for i in range(1, requests + 1):
        roll = rng.random()
        if roll < 0.70:
            uid = rng.choices(user_ids, user_weights)[0]
            users.tags(["users", f"team:{uid % 5}"]).remember(
                f"user:{uid}", 300, lambda uid=uid: db.load_user(uid))
        elif roll < 0.85:
            day = rng.choices(days, day_weights)[0]
            reports.remember(f"report:{day}", None, lambda day=day: db.load_report(day))
        elif roll < 0.95:
            default.increment("requests")
            default.get(f"session:{rng.randrange(50)}")
        else:
            sid = rng.randrange(50)
            if rng.random() < 0.5:
                default.put(f"session:{sid}", {"sid": sid}, 60)
            else:
                default.forget(f"session:{sid}")
        if i % 1000 == 0:
            users.tags([f"team:{(i // 1000) % 5}"]).flush()  # a team changed: drop its members
        if i % every == 0:
            runtime.stats.sample()
            samples.append(i)
    return DemoReport(runtime, requests, db.calls, samples)


def plot_stats(frame: pd.DataFrame, series: pd.DataFrame, path: PathLike,
               x: list[int] | None = None) -> Path:
    """Write a PNG: hits/misses per region (bars) and hit ratio over the run (lines).

    ``frame`` is ``stats.to_frame()``, ``series`` is ``stats.timeseries()``; ``x`` labels the samples
    (requests done when each was taken; default 1, 2, 3...).
    """
    require("matplotlib", "notebook")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(fig)  # the Agg canvas, drawn without pyplot (no GUI backend, no global state)
    bars, lines = fig.subplots(1, 2)
    regions = [str(name) for name in frame.index]
    positions = range(len(regions))
    bars.bar([p - 0.2 for p in positions], frame["hits"], width=0.4, label="hits", color="#3a923a")
    bars.bar([p + 0.2 for p in positions], frame["misses"], width=0.4, label="misses", color="#c03d3e")
    bars.set_xticks(list(positions), regions)
    bars.set_title("hits and misses per region")
    bars.set_xlabel("region")
    bars.set_ylabel("lookups")
    bars.legend()
    if not series.empty:
        rows = series.reset_index()
        rows["sample"] = rows.groupby("region").cumcount()  # robust to two samples in one clock tick
        ratio = rows.pivot(index="sample", columns="region", values="hit_ratio")
        xs = x if x is not None and len(x) == len(ratio) else list(range(1, len(ratio) + 1))
        for region in ratio.columns:
            lines.plot(xs, ratio[region].to_numpy(), marker="o", markersize=3, label=str(region))
        lines.legend(title="region")
    lines.set_title("cumulative hit ratio")
    lines.set_xlabel("requests" if x is not None else "sample")
    lines.set_ylim(0, 1)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def demo(plot: str | None = None, requests: int = 5000, seed: int = 7, *, out: TextIO | None = None) -> int:
    """Run the demo workload on the embedded default config and print its stats.

    Prints ``runtime.stats.to_frame()`` and a one-line summary; with ``plot``, also writes a PNG
    chart there. The file store writes under ``.cache/cachekit`` in the working directory.
    Returns the exit code (0).
    """
    out = out or sys.stdout
    runtime = load()
    try:
        report = run_demo_workload(runtime, requests=requests, seed=seed)
        frame = runtime.stats.to_frame()
        print(frame.to_string(float_format=lambda x: f"{x:.3f}"), file=out)
        print(f"\n{report.requests} requests, hit ratio {report.hit_ratio:.3f}, "
              f"the fake database was asked {report.loader_calls} times", file=out)
        if plot:
            written = plot_stats(frame, runtime.stats.timeseries(), plot, x=report.samples)
            print(f"plot written to {written}", file=out)
    finally:
        runtime.close()
    return 0
