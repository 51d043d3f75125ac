"""Write notebooks/02-tuning, 03-analysis and 04-ci-validation from the cells below (outputs empty).

Edit the cells here, then run ``.venv/bin/python scripts/make_notebooks.py`` and check with
``.venv/bin/pytest --nbval-lax notebooks``. Each notebook reads as a story; its checks are kept few and
at the end. (01-quickstart has its own script, ``make_quickstart_notebook.py``.)
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

TUNING: list[tuple[str, str]] = [
    ("md", """\
# Tuning a cache: measure, ask "what if", apply, save

A shop caches product rows in the `products` region of `02-tuning.toml`: 200 entries, 30 seconds.
Is that a good setting? We run a workload, look at it in the tuning panel, capture a trace of the
reads, ask the simulator what other sizes and TTLs would have done, apply the best one live and save
it back to the TOML file — comments and all. No server needed: the stores are in-process."""),
    ("code", """\
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from cachekit import Trace, load, simulate
from cachekit.notebook import TuningPanel, capture_trace

# Work on a copy, so the notebook can be run again (the browser test points at its own copy).
config_path = Path(os.environ.get("CACHEKIT_TUNING_CONFIG")
                   or shutil.copy("02-tuning.toml", Path(tempfile.mkdtemp()) / "tuning.toml"))
runtime = load(config_path)
products = runtime.region("products")
products.policy.max_size, products.policy.ttl"""),
    ("md", """\
## A workload

Shoppers look at products with a Zipf popularity: a few are hot, most are rare. Each read goes through
`remember` (load on a miss). While it runs we capture a trace of the reads: `capture_trace` uses
`runtime.trace()` when the runtime records traces itself, and otherwise hands us a `Trace` to fill."""),
    ("code", """\
shoppers = Trace.synthetic_zipf(n_keys=3_000, n_events=20_000, alpha=0.9, seed=7, rate=200.0)


def load_product(key):
    return {"id": key, "name": f"product {key}"}


with capture_trace(runtime) as trace:
    for t, key in zip(shoppers.time, shoppers.key_hash):
        key = int(key)
        loaded = []
        products.remember(f"product:{key}", None, lambda: loaded.append(1) or load_product(key))
        if trace.recording == "manual":
            trace.record(float(t), "products", key, "get", hit=not loaded)
runtime.stats.sample()
runtime.stats.to_frame()[["hits", "misses", "hit_ratio", "evictions"]]"""),
    ("md", """\
## The panel

Tabs for regions, rules, invalidation, what-if and statistics. Every control changes the live runtime
at once; **save** writes the file back (and refuses to if someone edited it meanwhile)."""),
    ("code", """\
panel = TuningPanel(runtime, trace=trace)
panel"""),
    ("md", """\
## What if? A simulator sweep

The simulator replays the trace under other settings, with the memory store's own eviction."""),
    ("code", """\
sweep = simulate(trace, region="products", max_size=[100, 200, 500, 1_000, 2_000, 3_000], ttl=[30, 300])
fig, ax = plt.subplots(figsize=(7, 3.2))
for ttl, rows in sweep.groupby("ttl"):
    ax.plot(rows.max_size, rows.hit_ratio * 100, marker="o", label=f"TTL {ttl:.0f} s")
ax.set_xlabel("max size (entries)")
ax.set_ylabel("predicted hit ratio (%)")
ax.grid(alpha=0.3)
ax.legend()
plt.show()
sweep[["max_size", "ttl", "hit_ratio", "misses", "evictions"]]"""),
    ("md", """\
The smallest setting within a point of the best is a good trade between memory and misses. We try it in
the panel's What-if tab (the prediction shows beside the current hit ratio), then apply it live."""),
    ("code", """\
best = sweep.hit_ratio.max()
choice = sweep[sweep.hit_ratio >= best - 0.01].sort_values(["max_size", "ttl"]).iloc[0]
panel.whatif_region.value = "products"
panel.whatif_max_size.value = int(choice.max_size)
panel.whatif_ttl.value = float(choice.ttl)
current, predicted = panel.predict()
print(f"now {current:.1%} → predicted {predicted:.1%} at max_size={int(choice.max_size):,}, ttl={choice.ttl:.0f} s")
panel.whatif_apply.click()
products.policy.max_size, products.policy.ttl"""),
    ("md", """\
## Save it

The tuned values go back into the file they came from; comments and layout stay."""),
    ("code", """\
panel.save.click()
print(panel.status.value)
print(config_path.read_text())"""),
    ("md", """\
## Checks"""),
    ("code", """\
import tomlkit

saved = tomlkit.parse(config_path.read_text())
if not os.environ.get("CACHEKIT_TUNING_CONFIG"):   # served in a browser, the panel stays live
    panel.stop()
    assert saved["regions"]["products"]["max_size"] == int(choice.max_size)
    assert "# in-process: no server needed" in config_path.read_text()
assert predicted > current"""),
]

ANALYSIS: list[tuple[str, str]] = [
    ("md", """\
# Analysing a cache with pandas

A site caches rendered `pages` in a file store with an in-process L1 in front, and `users` in memory.
We run a workload in three phases — a cold start, a warm cache, and a cache just flushed — and read what
happened from `runtime.stats`: rates over time, latency percentiles, the L1 vs L2 split and the
invalidations. Every table below is a DataFrame straight from the runtime, every plot is one pandas or
matplotlib call on it. No server needed: both stores are embedded."""),
    ("code", """\
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cachekit import CacheConfig

runtime = CacheConfig(
    providers={"memory": {"type": "memory"}, "disk": {"type": "file", "path": tempfile.mkdtemp()}},
    regions={
        "pages": {"provider": "disk", "ttl": 600, "l1": {"ttl": 30, "max_size": 300}},
        "users": {"provider": "memory", "ttl": 60, "max_size": 500},
    },
    rules=[{"name": "user-changed", "strategy": "event_based", "events": ["user.updated"],
            "pattern": "users:{user_id}", "regions": ["users"]}],
).compile()
pages, users = runtime.region("pages"), runtime.region("users")"""),
    ("md", """\
## A workload in three phases

Readers ask for pages and users with a Zipf popularity (a few are hot, most are rare); a miss loads the
value. The runtime's background sampler (`start_sampling`) snapshots every counter ten times a second while
the workload runs. Between the second and the third phase the `pages` region is flushed, as a deploy would."""),
    ("code", """\
rng = np.random.default_rng(3)


def read(n):
    for key in rng.zipf(1.3, size=n) % 2_000:
        pages.remember(f"page:{key}", None, lambda: {"page": int(key), "html": "<p>...</p>" * 20})
        users.remember(f"users:{key}", None, lambda: {"user": int(key)}, tags=("vip",) if key < 10 else ())


runtime.stats.start_sampling(interval=0.1)
phases = {}
for phase in ("cold start", "warm", "after a flush"):
    if phase == "after a flush":
        runtime.invalidate(region="pages")
    phases[phase] = pd.Timestamp(time.time(), unit="s")
    for _ in range(6):
        read(250)
        time.sleep(0.06)
runtime.stats.stop_sampling()
runtime.stats.to_frame()[["provider", "hits", "misses", "hit_ratio", "loads", "evictions"]]"""),
    ("md", """\
## Rates over time

`timeseries()` holds the sampler's snapshots, indexed by `(time, region)`; `timeseries(rates=True)` turns
the cumulative counters into per-second rates over each interval. The hit ratio of an interval is its hits
over its reads: the cold start climbs, the warm phase stays high, and the flush knocks `pages` back down
while `users` does not notice."""),
    ("code", """\
rates = runtime.stats.timeseries(rates=True)
reads = rates.hits + rates.misses
rates["hit_ratio"] = rates.hits / reads.where(reads > 0)

t0 = phases["cold start"]
seconds = lambda times: (times - t0).total_seconds()  # noqa: E731  (the x axis: seconds into the run)

fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.5), sharex=True)
for region, frame in rates.groupby(level="region"):
    frame = frame.droplevel("region")
    top.plot(seconds(frame.index), frame.misses, marker=".", label=f"{region} misses/s")
    bottom.plot(seconds(frame.index), frame.hit_ratio * 100, marker=".", label=region)
for axis in (top, bottom):
    for phase, start in phases.items():
        axis.axvline(seconds(start), color="grey", linestyle=":")
    axis.grid(alpha=0.3)
for phase, start in phases.items():
    top.annotate(phase, (seconds(start), 1), xycoords=("data", "axes fraction"), xytext=(3, -12),
                 textcoords="offset points", fontsize="small", color="grey")
top.set_ylabel("misses per second")
bottom.set_ylabel("hit ratio (%)")
bottom.set_xlabel("seconds into the run")
bottom.set_ylim(0, 100)
top.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
plt.show()
rates[["hits", "misses", "loads", "hit_ratio"]].round(2).tail(4)"""),
    ("md", """\
## Latency percentiles

`latency_frame()` gives count, mean and percentiles per region and operation, in microseconds, from a
compact histogram per `(region, op)`: `get` a read that reached the region's store, `put` a write,
`load` a `remember` callback. L1 hits are not timed (they stay as cheap as with statistics off), so the
`get` count of `pages` is its L1 misses. Writing a file dominates; a read from it costs tens of
microseconds, one from memory about one."""),
    ("code", """\
latency = runtime.stats.latency_frame()
ax = latency[["p50_us", "p90_us", "p99_us"]].plot.barh(logx=True, figsize=(7, 3.2))
ax.set_xlabel("microseconds (log scale)")
ax.set_ylabel("")
ax.invert_yaxis()
plt.show()
latency.round(1)"""),
    ("md", """\
## L1 vs L2

`to_frame(by="tier")` splits each region by tier: `pages` has an `l1` row (its in-process tier) and an `l2`
row (the file store); `users` has only `l2`. A read that L1 cannot answer goes to L2, so L1's misses are
L2's lookups."""),
    ("code", """\
tiers = runtime.stats.to_frame(by="tier")
answered = tiers.hits.unstack("tier").reindex(columns=["l1", "l2"]).fillna(0)
answered["missed (loaded)"] = tiers.xs("l2", level="tier").misses
ax = answered.rename(columns={"l1": "answered by L1", "l2": "answered by L2"}).plot.barh(
    stacked=True, figsize=(7, 2.6))
ax.set_xlabel("reads")
ax.set_ylabel("")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=3, frameon=False)
plt.show()
tiers[["hits", "misses", "hit_ratio", "evictions", "expirations", "loads"]]"""),
    ("md", """\
## Invalidations

Beside the flush of `pages` during the workload, we remove users by pattern, by tag and through the
`user.updated` event of the `user-changed` rule. `invalidations_frame()` counts each, per region, kind and
name: how many times, how many keys it removed, and how many generations it advanced (a tag removes nothing
one by one: its generation moves on). What an event removed is counted under the event and under the
pattern its rule filled in (`users:7`)."""),
    ("code", """\
runtime.invalidate("users:1*", region="users")
runtime.invalidate(tags=["vip"], region="users")
runtime.emit("user.updated", user_id=7)
invalidations = runtime.stats.invalidations_frame()
ax = invalidations.removed.plot.barh(figsize=(7, 2.4))
ax.set_xlabel("keys removed")
ax.set_ylabel("")
ax.invert_yaxis()
plt.show()
invalidations"""),
    ("md", """\
## Checks"""),
    ("code", """\
assert len(rates.xs("pages", level="region")) >= 5
assert (rates[["hits", "misses", "loads"]] >= 0).all().all()
assert (latency.p50_us <= latency.p99_us).all() and (latency.p99_us <= latency.max_us).all()
assert {"get", "put", "load"} <= set(latency.loc["pages"].index)
assert tiers.loc[("pages", "l1"), "hits"] > 0 and tiers.loc[("pages", "l2"), "hits"] > 0
assert invalidations.loc[("users", "pattern", "users:1*"), "removed"] > 0
assert invalidations.loc[("users", "event", "user.updated"), "count"] == 1
assert invalidations.loc[("pages", "flush"), "count"].sum() == 1
runtime.close()"""),
]

VALIDATION: list[tuple[str, str]] = [
    ("md", """\
# Validating configs in CI

`cachekit validate` checks a folder of TOML configs: exit status 0 when all are valid, 1 otherwise.
`--format json` gives the problems as data (a DataFrame here); `--format github` prints annotations that
GitHub Actions shows on the pull request's lines."""),
    ("code", """\
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

folder = Path(tempfile.mkdtemp())
(folder / "good.toml").write_text('''
[providers.local]
type = "memory"

[regions.users]
provider = "local"
ttl = 600
''')
(folder / "typo.toml").write_text('''
[regions.users]
provider = "lcoal"
ttl = -5
''')
(folder / "unknown-key.toml").write_text('''
[cache]
prefix = "shop"
defualt_ttl = 60
''')
sorted(p.name for p in folder.iterdir())"""),
    ("code", """\
def validate(*args):
    run = subprocess.run([sys.executable, "-m", "cachekit", "validate", str(folder), *args],
                         capture_output=True, text=True)
    return run.returncode, run.stdout


status, text = validate()
print(text)
print("exit status", status)"""),
    ("md", """\
## Problems as a DataFrame"""),
    ("code", """\
status_json, out = validate("--format", "json")
problems = pd.DataFrame(json.loads(out))
problems["file"] = problems.file.map(lambda f: Path(f).name)
problems"""),
    ("md", """\
## GitHub annotations

In a workflow, `cachekit validate configs/ --format github` prints one `::error` line per problem."""),
    ("code", """\
status_gh, annotations = validate("--format", "github")
print(annotations)"""),
    ("md", """\
## Checks"""),
    ("code", """\
assert status == status_json == status_gh == 1
assert set(problems.file) == {"typo.toml", "unknown-key.toml"}
assert annotations.startswith("::error file=")"""),
]

NOTEBOOKS = {"02-tuning.ipynb": TUNING, "03-analysis.ipynb": ANALYSIS, "04-ci-validation.ipynb": VALIDATION}


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """One notebook, outputs cleared."""
    nb = new_notebook(cells=[new_markdown_cell(src) if kind == "md" else new_code_cell(src)
                             for kind, src in cells])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def main() -> None:
    """Write the notebooks next to 01-quickstart."""
    folder = Path(__file__).resolve().parent.parent / "notebooks"
    for name, cells in NOTEBOOKS.items():
        nb = build(cells)
        nbformat.validate(nb)
        nbformat.write(nb, folder / name)
        print(f"wrote {folder / name}")


if __name__ == "__main__":
    main()
