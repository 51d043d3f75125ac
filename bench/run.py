"""cachekit benchmarks: one run comparing cachekit with its peers (``make bench``).

Scenarios: one hot key (memory get hit / miss / set / remember, Redis get hit and get_many, memcached
get hit); the Zipf(1.0) workload over 100 000 keys (``zipf.py``, ``zipf_shared.py``: memory get / put,
``@cached``, stats on vs off, Redis and memcached get / put / get_many(100), files, a warm L1);
``import`` time; the latency of cross-process L1 invalidation over the bus; the hit ratio of eviction
policies (``hit_ratio.py``); and the targets of issues 13 and 14 checked against the run
(``targets.py``). Hot-key timings are timeit-style (best of N repeats of a calibrated loop); Zipf rows
time passes over precomputed sequences, ratios are medians of paired repeats with min..max. Ratios
are peer / cachekit time: above 1.00, cachekit is faster. Results go to ``bench/results.json`` and
``docs/benchmarks.md``.

    .venv/bin/python bench/run.py                 # everything (``make bench``, several minutes)
    .venv/bin/python bench/run.py --quick         # smaller, fewer repeats (``make bench-quick``, < 2 min)
    .venv/bin/python bench/run.py --smoke --out /tmp/b  # tiny sizes: the scenarios and checks run (a test)
    .venv/bin/python bench/run.py --only memory   # some scenarios (results are not written)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from harness import Bench, Scenario, Settings, format_ns, format_ratio, format_spread, measure_sync  # noqa: E402
from peers import ensure_peers, peer_versions  # noqa: E402

GROUPS = ("memory", "redis", "memcached", "file", "import", "bus", "hit_ratio")
#: per mode: timing settings, bus iterations, import repeats
MODES: dict[str, tuple[Settings, int, int]] = {
    "full": (Settings(repeat=9, target=0.08), 300, 15),
    "quick": (Settings(repeat=5, target=0.02), 60, 5),
    "smoke": (Settings(repeat=2, target=0.001), 5, 1),
}
RESULTS = BENCH_DIR / "results.json"
DOC = ROOT / "docs" / "benchmarks.md"


def machine_info(settings: Settings) -> dict[str, Any]:
    """Python, CPU, date and load: what a reader needs to weigh the numbers."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    loop_ns = min(measure_sync("pass", {}, settings)[0]) * 1e9
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_start": _load(),
        "timing_loop_overhead_ns": round(loop_ns, 1),
        "repeat": settings.repeat,
        "target_seconds_per_repeat": settings.target,
        "versions": peer_versions(),
    }


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _guarded(name: str, run: Callable[[], list[Scenario]]) -> list[Scenario]:
    """Run a scenario group; a crash becomes a scenario saying so, never the end of the run."""
    try:
        return run()
    except Exception as exc:
        s = Scenario(f"{name}_error", f"{name}: could not run")
        s.unavailable("every row", "-", f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
        return [s]


def print_scenario(s: Scenario) -> None:
    """A plain-text table of one scenario."""
    print(f"\n== {s.title}")
    if s.description:
        print(f"   {s.description}")
    header = f"   {'library':<14} {'implementation':<42} {'ns/op min':>12} {'median':>12} {'vs cachekit':>11}"
    print(header)
    print("   " + "-" * (len(header) - 3))
    for r in s.rows:
        mark = " *" if r.reference else ""
        ratio = format_spread(r) if s.paired else format_ratio(r.ratio)
        line = (f"   {r.library:<14} {(r.label + mark):<42} {format_ns(r.ns_min):>12} "
                f"{format_ns(r.ns_median):>12} {ratio:>11}")
        if r.status != "ok" or r.note:
            line += f"  {r.note}"
        print(line)
    for note in s.notes:
        print(f"   note: {note}")


def print_work(work: list[dict[str, Any]]) -> None:
    """The counted work of one in-memory operation (from bench/hotpath.py)."""
    if not work:
        return
    print("\n== Work per in-memory operation (counted, load-independent)")
    print(f"   {'operation':<32} {'frames':>6} {'bytecodes':>9} {'C calls':>7}")
    for row in work:
        print(f"   {row['operation']:<32} {row['frames']:>6} {row['bytecodes']:>9} {row['c_calls']:>7}")


def print_bus(bus: dict[str, Any]) -> None:
    """The bus-latency summary as text."""
    print("\n== Bus: cross-process L1 invalidation latency")
    if bus.get("status") != "ok":
        print(f"   n/a: {bus.get('note')}")
        return
    print(f"   mode: {bus['mode']}; {bus['samples']} samples, {bus['timeouts']} timeouts; "
          f"poll interval {bus['poll_interval_us']:.0f} us")
    for label, key in (("from put() start", "from_put_start"), ("from put() return", "from_put_return")):
        d = bus[key]
        print(f"   {label:<18} p50 {d['p50_ms']:.3f} ms   p90 {d['p90_ms']:.3f} ms   "
              f"p99 {d['p99_ms']:.3f} ms   max {d['max_ms']:.3f} ms")


def _md_table(s: Scenario) -> list[str]:
    out = [f"### {s.title}", ""]
    if s.description:
        out += [s.description, ""]
    ratio_head = "peer / cachekit (median, min..max)" if s.paired else "peer / cachekit"
    out += [f"| library | implementation | ns/op (min) | ns/op (median) | {ratio_head} | note |",
            "| --- | --- | ---: | ---: | ---: | --- |"]
    for r in s.rows:
        label = f"**`{r.label}`** (reference)" if r.reference else f"`{r.label}`"
        note = r.note.replace("|", "\\|")
        ratio = format_spread(r) if s.paired else format_ratio(r.ratio)
        out.append(f"| {r.library} | {label} | {format_ns(r.ns_min)} | {format_ns(r.ns_median)} | "
                   f"{ratio} | {note} |")
    out.append("")
    out += [f"Note: {n}" for n in s.notes]
    if s.notes:
        out.append("")
    return out


def markdown(machine: dict[str, Any], scenarios: list[Scenario], bus: dict[str, Any] | None,
             work: list[dict[str, Any]], hit_ratio: dict[str, Any] | None = None,
             targets: list[dict[str, Any]] | None = None) -> str:
    """docs/benchmarks.md: targets, how to reproduce, machine, one table per scenario, bus latency."""
    from targets import markdown as targets_markdown

    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    load = machine.get("load_average_start")
    mode = machine.get("mode", "full")
    lines = [
        "# Benchmarks",
        "",
        "<!-- generated by bench/run.py: edit the script, not this file -->",
        "",
        "cachekit compared with the libraries people reach for instead: a plain `dict` (the floor), "
        "cachetools, cachebox, theine, dogpile.cache, cashews and aiocache in memory; redis-py, pymemcache "
        "and the same peers on Redis and memcached servers on the loopback interface; diskcache for files.",
        "",
        f"Run: {machine['date']}, `bench/run.py` in **{mode}** mode"
        + ("" if mode == "full" else " (smaller workloads and fewer repeats than `make bench`)")
        + f", {machine['python']}, {machine['cpu']} ({machine['cpu_count']} logical CPUs), "
        f"load average {load if load is not None else 'n/a'} at start.",
        "",
    ]
    if targets is not None:
        lines += targets_markdown(targets, mode)
    lines += [
        "## Reproduce",
        "",
        "```bash",
        "make bench                      # = .venv/bin/python bench/run.py (starts its own servers)",
        "make bench-quick                # = bench/run.py --quick: smaller workloads, under two minutes",
        ".venv/bin/python bench/run.py --only memory,bus   # a subset (does not rewrite this page)",
        "```",
        "",
        "The peers come from the `bench` extra (`pip install -e '.[bench]'`); a missing one is installed "
        "with pip on the first run, and one that still cannot be imported shows as n/a. redis-server and "
        "memcached are started on free loopback ports (`make servers` installs them). Results are also "
        "written to `bench/results.json`.",
        "",
        "## How it is measured",
        "",
        "- **Zipf rows** (the workload users have): keys drawn from Zipf(1.0) over 100 000 keys (seeded) "
        "into sequences built before timing; every store filled first; small dict values. One timed run "
        "is one pass over the sequence (ns/op = the pass / its length), after one untimed warm-up pass "
        "and a check that the store returns the value. Rows run interleaved, and the ratio is the "
        "**median over repeats of (row's pass time / reference's pass time)** for passes that ran side by "
        "side, with **min..max**. Each sequence is timed in slices (about 10 000 keys in memory, 500 "
        "round trips on a server), every row on the same slice, so the repeats are many short side-by-side "
        "pairs: a burst of load on a shared machine spoils a few pairs, not the median.",
        "- cachekit runs with its defaults: statistics on (`[cache] stats = true`), LRU memory policy.",
        "- Redis rows: cachekit's client and the raw redis-py client hold their own connections to the one "
        "server thread. Two raw clients, or a raw client and one built as cachekit builds its own, timed "
        "the same way side by side measure 1.00 (`bench/ab_redis.py --raw-vs-raw`), so the ratio is "
        "cachekit's own work; a loopback round trip takes about 18 µs or about 55 µs on a 2-CPU machine "
        "depending on where the scheduler puts client and server, which moves both rows of a pair alike.",
        "- **Hot-key rows**: timeit-style: the statement runs in a calibrated loop (about "
        f"{machine['target_seconds_per_repeat']} s per repeat), {machine['repeat']} repeats, garbage collector "
        "off; **min** is the least "
        "disturbed repeat, **median** shows the spread. Both include the loop itself "
        f"(about {machine['timing_loop_overhead_ns']} ns per iteration on this machine).",
        "- **peer / cachekit** (hot-key rows) = the row's min divided by the min of the cachekit row marked "
        "*reference*: above 1.00, cachekit is faster; below, the row is faster than cachekit.",
        "- Async rows are awaited one after another inside one event loop; the time per `await` is "
        "comparable to a sync call's.",
        "- Before timing, each statement runs once and its result is checked (a hit must return the "
        "value), so a broken setup shows as a failure, never as a fast number.",
        "- Method lookups are part of every statement (`region.get(k)`, `c[k]`, `d.get(k)`), as in "
        "real code.",
        "",
        "## Machine",
        "",
        f"- Python: {machine['python']} on {machine['platform']}",
        f"- CPU: {machine['cpu']}, {machine['cpu_count']} logical CPUs",
        f"- Date: {machine['date']}",
        f"- Load average at start: {load if load is not None else 'n/a'}"
        " (this machine may be shared: compare ratios, not absolute times, across runs)",
        f"- Versions: {versions}",
        "",
        "## Results",
        "",
    ]
    for s in scenarios:
        lines += _md_table(s)
    if work:
        lines += [
            "### Work per in-memory operation (counted)",
            "",
            "Python frames entered, bytecode instructions executed and C functions called by *one* "
            "operation, counted with `sys.settrace`/`sys.setprofile` (`bench/hotpath.py`). Unlike times, "
            "counts do not move with the machine's load.",
            "",
            "| operation | frames | bytecodes | C calls | what runs |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        lines += [f"| {w['operation']} | {w['frames']} | {w['bytecodes']} | {w['c_calls']} | `{w['detail']}` |"
                  for w in work]
        lines.append("")
    lines += ["### Bus: cross-process L1 invalidation latency", ""]
    if bus is None:
        lines += ["Not run.", ""]
    elif bus.get("status") != "ok":
        lines += [f"n/a: {bus.get('note')}", ""]
    else:
        lines += [
            f"Two runtimes on one multi-level config (Redis L2, memory L1, `[bus] enabled = true`), "
            f"run as **{bus['mode']}**. Runtime B holds the key in its L1 and polls its L1 dict every "
            f"{bus['poll_interval_us']:.0f} µs (sleeping, so its bus thread can run); runtime A puts a new "
            "value; the latency is the moment the key left B's L1 minus the moment A's `put` started "
            "(the window in which B can still serve the old value) or returned. Timestamps come from "
            "`time.perf_counter_ns` (CLOCK_MONOTONIC, one clock for all processes). "
            f"{bus['samples']} samples after {bus.get('warmup', 0)} warm-up iterations, {bus['timeouts']} timeouts.",
            "",
            "| measured from | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | mean (ms) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for label, key in (("`put()` start", "from_put_start"), ("`put()` return", "from_put_return")):
            d = bus[key]
            lines.append(f"| {label} | {d['p50_ms']:.3f} | {d['p90_ms']:.3f} | {d['p99_ms']:.3f} | "
                         f"{d['max_ms']:.3f} | {d['mean_ms']:.3f} |")
        lines.append("")
    if hit_ratio is not None:
        from hit_ratio import markdown as hit_ratio_markdown

        lines += hit_ratio_markdown(hit_ratio)
    return "\n".join(lines)


QUOTES = ROOT / "docs" / "multi-level.md"


def quote_bus(bus: dict[str, Any] | None, page: Path = QUOTES) -> bool:
    """Rewrite the bus latencies docs/multi-level.md quotes from this page (a test keeps them equal)."""
    if not bus or bus.get("status") != "ok" or not page.exists():
        return False
    text = page.read_text(encoding="utf-8")
    for moment, key in (("start", "from_put_start"), ("return", "from_put_return")):
        d = bus[key]
        row = (f"| `put()` {moment} | {d['p50_ms']:.3f} ms | {d['p90_ms']:.3f} ms | {d['p99_ms']:.3f} ms | "
               f"{d['max_ms']:.3f} ms |")
        text = re.sub(rf"^\| `put\(\)` {moment} \| [^\n]* ms \|$", lambda _m, row=row: row, text, count=1,
                      flags=re.M)
    page.write_text(text, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the tables, write results.json and docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller workloads, 5 short repeats (under 2 minutes)")
    parser.add_argument("--smoke", action="store_true", help="tiny workloads, 2 repeats: checks the scenarios run")
    parser.add_argument("--out", type=Path, help="write results.json and benchmarks.md into this directory")
    parser.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated subset of {','.join(GROUPS)}")
    parser.add_argument("--repeat", type=int, help="repeats per row (default 9, quick 5, smoke 2)")
    parser.add_argument("--write", action="store_true", help="write results even for a subset")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        parser.error(f"unknown scenario group(s) {unknown}; known: {', '.join(GROUPS)}")

    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    settings, bus_iterations, import_repeats = MODES[mode]
    if args.repeat:
        settings.repeat = args.repeat
    started = time.monotonic()
    ensure_peers()
    machine = machine_info(settings)
    machine["mode"] = mode
    print(f"cachekit benchmarks: {machine['python']}, {machine['cpu_count']} CPUs ({machine['cpu']}), "
          f"{machine['date']}, load {machine['load_average_start']}")
    print(f"timeit-style: best of {settings.repeat} repeats of ~{settings.target}s; "
          "ratio = peer / cachekit (above 1.00: cachekit is faster); * marks the reference row")

    bench = Bench(settings)
    scenarios: list[Scenario] = []
    bus: dict[str, Any] | None = None
    work: list[dict[str, Any]] = []
    hit_ratio: dict[str, Any] | None = None
    from zipf import Sizes

    sizes = Sizes.of(mode)

    def run_group(name: str, run: Callable[[], list[Scenario]]) -> None:
        t0 = time.monotonic()
        group = _guarded(name, run)
        for s in group:
            s.finish()
            print_scenario(s)
        print(f"   ({name}: {time.monotonic() - t0:.1f} s)", flush=True)
        scenarios.extend(group)

    try:
        if "memory" in groups:
            from bench_memory import memory_scenarios
            from hotpath import count_all
            from zipf import memory_zipf_scenarios

            run_group("memory", lambda: memory_scenarios(bench) + memory_zipf_scenarios(bench, sizes))
            try:
                work = count_all()
            except Exception as exc:
                print(f"could not count the hot path: {type(exc).__name__}: {exc}")
            print_work(work)
        if "redis" in groups:
            from bench_shared import redis_scenarios

            run_group("redis", lambda: redis_scenarios(bench, sizes))
        if "memcached" in groups:
            from bench_shared import memcached_scenarios

            run_group("memcached", lambda: memcached_scenarios(bench, sizes))
        if "file" in groups:
            from zipf_shared import file_zipf_scenarios

            run_group("file", lambda: file_zipf_scenarios(bench, sizes))
        if "import" in groups:
            from targets import import_scenario

            run_group("import", lambda: [import_scenario(import_repeats)])
        if "bus" in groups:
            from bench_bus import bus_latency

            try:
                bus = bus_latency(bus_iterations)
            except Exception as exc:
                traceback.print_exc()
                bus = {"status": "n/a", "note": f"{type(exc).__name__}: {exc}"}
            print_bus(bus)
        if "hit_ratio" in groups:
            from hit_ratio import hit_ratios, print_table

            hit_ratio = hit_ratios(mode=mode)
            print_table(hit_ratio)
    finally:
        bench.close()
    from targets import evaluate, print_targets

    targets = evaluate(scenarios, hit_ratio)
    print_targets(targets)

    machine["load_average_end"] = _load()
    machine["seconds"] = round(time.monotonic() - started, 1)
    print(f"\ndone in {machine['seconds']} s")
    if args.no_write or (set(groups) != set(GROUPS) and not args.write):
        print("results not written (subset or --no-write; use --write to force)")
        return 0
    results, doc = (args.out / "results.json", args.out / "benchmarks.md") if args.out else (RESULTS, DOC)
    if mode == "smoke" and not args.out:
        print("smoke results not written (tiny sizes); pass --out DIR to keep them")
        return 0
    doc.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps({"machine": machine, "targets": targets,
                                   "scenarios": [s.as_dict() for s in scenarios],
                                   "work_per_operation": work, "bus": bus, "hit_ratio": hit_ratio},
                                  indent=2) + "\n")
    doc.write_text(markdown(machine, scenarios, bus, work, hit_ratio, targets))
    print(f"wrote {results} and {doc}")
    if doc == DOC and quote_bus(bus):
        print(f"updated the bus latencies quoted in {QUOTES.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
