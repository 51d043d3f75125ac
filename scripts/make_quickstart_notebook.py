"""Write notebooks/01-quickstart.ipynb from the cells below (outputs empty).

Edit the cells here, then run ``.venv/bin/python scripts/make_quickstart_notebook.py`` and check with
``.venv/bin/pytest --nbval-lax notebooks/01-quickstart.ipynb``. Every code cell ends with asserts, so
running the notebook tests what it shows.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS: list[tuple[str, str]] = [
    ("md", """\
# cachekit quickstart

This notebook walks through the basics: a TOML config compiled into a runtime, the Laravel-style
`Cache` facade, regions, `remember`, tags, a file-backed store and the statistics DataFrame.

It needs no server: the config is `configs/default.toml` (an in-process memory store plus a
directory of files). Every code cell ends with `assert` lines, so running the notebook (as
`make test` does, with nbval) checks that what it shows is true."""),
    ("code", """\
from pathlib import Path

from cachekit import Cache, load

# The notebook runs with its own directory as the working directory.
config_path = Path("../configs/default.toml")
runtime = load(config_path)      # read the TOML, apply CACHEKIT_... variables, validate, compile
Cache.configure(runtime)         # the facade now uses this runtime
runtime

assert runtime.config.cache.prefix == "cachekit"
assert set(runtime.config.providers) == {"memory", "disk"}
assert Cache.runtime() is runtime"""),
    ("md", """\
## The facade

`put`, `get`, `has`, `forget`: a cached `None` is a hit, and a missing key gives the default."""),
    ("code", """\
Cache.put("greeting", "hello", ttl=60)
Cache.put("nothing", None)

print(Cache.get("greeting"), Cache.get("nothing"), Cache.get("absent", default="fallback"))

assert Cache.get("greeting") == "hello"
assert Cache.has("nothing") and Cache.get("nothing", default="fallback") is None
assert Cache.get("absent", default="fallback") == "fallback"
assert Cache.forget("greeting") and not Cache.has("greeting")"""),
    ("md", """\
## remember: load once, then serve from the cache

The callback runs only on a miss; concurrent callers of one key share a single load."""),
    ("code", """\
calls = []


def load_user() -> dict:
    calls.append(1)          # stands for a database query
    return {"id": 1, "name": "Ada"}


users = [Cache.remember("user:1", 300, load_user) for _ in range(5)]
print(users[0], "- loader calls:", len(calls))

assert users == [{"id": 1, "name": "Ada"}] * 5
assert len(calls) == 1"""),
    ("md", """\
## Regions and tags

A region is a named policy with its own namespace; a name that the config does not declare gets
the default region's policy. Entries written through `tags([...])` are dropped by
`tags([...]).flush()` when they carry *any* of the flushed tags, and stay readable by plain `get`."""),
    ("code", """\
profiles = Cache.region("profiles")
profiles.tags(["users", "active"]).put("user:1", {"name": "Ada"})
profiles.tags(["users", "active"]).put("user:2", {"name": "Grace"})
profiles.tags(["users", "inactive"]).put("user:3", {"name": "Alan"})
profiles.put("settings", {"theme": "dark"})            # no tags

assert profiles.get("user:1") == {"name": "Ada"}       # a tagged key is still the same key
assert Cache.get("user:1") == {"id": 1, "name": "Ada"}  # another region: the remembered user of the default one

profiles.tags(["active"]).flush()
print({k: profiles.has(k) for k in ["user:1", "user:2", "user:3", "settings"]})

assert not profiles.has("user:1") and not profiles.has("user:2")
assert profiles.has("user:3") and profiles.has("settings")

profiles.tags(["users"]).flush()
assert not profiles.has("user:3") and profiles.get("settings") == {"theme": "dark"}"""),
    ("md", """\
## Counters and the file store

`increment` starts a missing key at 0. `Cache.store("disk")` is the default policy on the file
provider declared as `disk`: its values are files under `.cache/cachekit` and survive a restart."""),
    ("code", """\
Cache.forget("visits")
assert Cache.increment("visits") == 1
assert Cache.increment("visits", 5) == 6
assert Cache.decrement("visits", 2) == 4

disk = Cache.store("disk")
disk.flush()                                  # start clean: the directory outlives the kernel
disk.put("report:2024", {"total": 1234}, ttl=3600)

assert disk.get("report:2024") == {"total": 1234}
assert not Cache.has("report:2024")           # another store, another place
assert any(Path(".cache/cachekit").rglob("*.ck"))"""),
    ("md", """\
## Statistics as a DataFrame

One row per region (and per store): hits, misses, hit ratio, sets, deletes, errors, evictions,
loader calls..."""),
    ("code", """\
frame = runtime.stats.to_frame()
display(frame)

assert {"default", "profiles"} <= set(frame.index)
assert frame.loc["default", "loads"] == 1                   # the single load of user:1
assert frame.loc["default", "hits"] >= 4                    # the four remembered reads after it
assert 0 < frame.loc["default", "hit_ratio"] < 1
assert frame.loc["default@disk", "provider"] == "disk\""""),
    ("md", """\
`runtime.stats.sample()` records a snapshot; `timeseries()` returns the snapshots, indexed by
time and region. `reset()` zeroes every counter."""),
    ("code", """\
runtime.stats.sample()
Cache.get("user:1")
runtime.stats.sample()
series = runtime.stats.timeseries()
display(series.tail())

hits = series.xs("default", level="region")["hits"]
assert len(hits) == 2 and hits.iloc[1] == hits.iloc[0] + 1

runtime.stats.reset()
assert runtime.stats.totals()["hits"] == 0"""),
    ("md", """\
## Clean up

`Cache.reset()` forgets the binding; the next `Cache` call configures itself again
(`CACHEKIT_CONFIG`, else `./cachekit.toml`, else the embedded default)."""),
    ("code", """\
disk.flush()
Cache.reset()
runtime.close()

assert runtime.closed"""),
]


def build() -> nbformat.NotebookNode:
    """The notebook, outputs cleared."""
    cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def main() -> None:
    """Write the notebook next to the repository's other notebooks."""
    target = Path(__file__).resolve().parent.parent / "notebooks" / "01-quickstart.ipynb"
    nb = build()
    nbformat.validate(nb)
    nbformat.write(nb, target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
