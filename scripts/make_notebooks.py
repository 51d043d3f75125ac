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

Statistics as DataFrames: rates over time, latency percentiles, the L1 vs L2 split, invalidations.
The config puts an in-process L1 in front of a file store (no server needed)."""),
    ("code", """\
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cachekit import CacheConfig, Runtime

folder = tempfile.mkdtemp()
runtime = Runtime(CacheConfig(
    providers={"memory": {"type": "memory"}, "disk": {"type": "file", "path": folder}},
    regions={
        "pages": {"provider": "disk", "ttl": 600, "l1": {"ttl": 30, "max_size": 300}},
        "users": {"provider": "memory", "ttl": 60, "max_size": 500},
    },
))
pages, users = runtime.region("pages"), runtime.region("users")"""),
    ("md", """\
## A workload in steps

Twenty short steps of reads; the statistics are sampled after each step, and the time of every
read is kept for the latency percentiles."""),
    ("code", """\
rng = np.random.default_rng(3)
latencies = {"pages": [], "users": []}
for step in range(20):
    for key in rng.zipf(1.3, size=400) % 2_000:
        for region, name in ((pages, "pages"), (users, "users")):
            start = time.perf_counter()
            region.remember(f"{name}:{key}", None, lambda: {"key": int(key)})
            latencies[name].append((time.perf_counter() - start) * 1e6)
    runtime.stats.sample()
    time.sleep(0.02)
series = runtime.stats.timeseries()
series[["hits", "misses", "hit_ratio"]].tail(4)"""),
    ("md", """\
## Rates over time

`timeseries()` holds cumulative counters per region; a difference per region over the time between
samples gives rates."""),
    ("code", """\
counts = series[["hits", "misses"]].unstack("region")
seconds = counts.index.to_series().diff().dt.total_seconds()
rates = counts.diff().div(seconds, axis=0).dropna()
fig, ax = plt.subplots(figsize=(7, 3))
for region in ("pages", "users"):
    ax.plot(rates.index, rates["hits"][region], label=f"{region} hits/s")
    ax.plot(rates.index, rates["misses"][region], linestyle="--", label=f"{region} misses/s")
ax.set_ylabel("per second")
ax.legend(fontsize="small")
plt.show()
rates.round(0).tail(3)"""),
    ("md", """\
## Latency percentiles

Per region, from the time of every read (a hit in L1 is far cheaper than a read from the file store)."""),
    ("code", """\
latency = pd.DataFrame({
    name: pd.Series(values).describe(percentiles=[0.5, 0.9, 0.99])[["count", "mean", "50%", "90%", "99%", "max"]]
    for name, values in latencies.items()
}).T.rename(columns={"mean": "mean_us", "50%": "p50_us", "90%": "p90_us", "99%": "p99_us", "max": "max_us"})
latency.round(1)"""),
    ("md", """\
## L1 vs L2

`pages` reads its L1 first; `l1_hits` counts the reads served there, the rest of the hits came from the
file store."""),
    ("code", """\
frame = runtime.stats.to_frame()
tiers = pd.DataFrame({
    "l1 hits": frame.l1_hits,
    "l2 hits": frame.hits - frame.l1_hits,
    "misses": frame.misses,
})
tiers.plot.barh(stacked=True, figsize=(7, 2.2))
plt.show()
tiers"""),
    ("md", """\
## Invalidations

Each `runtime.invalidate` returns what it removed; collected, they make a table."""),
    ("code", """\
actions = [("pattern users:1*", dict(pattern="users:1*", region="users")),
           ("flush pages", dict(region="pages")),
           ("pattern users:2*", dict(pattern="users:2*", region="users"))]
invalidations = pd.DataFrame(
    [{"action": label, "removed": runtime.invalidate(**kwargs).count} for label, kwargs in actions]
).set_index("action")
invalidations"""),
    ("md", """\
## Checks"""),
    ("code", """\
assert len(series.index.get_level_values("time").unique()) == 20
assert (rates.values >= 0).all()
assert frame.loc["pages", "l1_hits"] > 0
assert invalidations.loc["pattern users:1*", "removed"] > 0
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
