"""cachekit benchmarks: one run comparing cachekit with its peers (``make bench``).

Scenarios: memory get hit / miss / set / remember, Redis get hit and get_many, memcached get hit,
the latency of cross-process L1 invalidation over the bus, and the hit ratio of eviction policies
(``bench/hit_ratio.py``). Every timing is timeit-style (best of
N repeats of a calibrated loop; ns/op min and median); ratios are peer / cachekit, so a ratio above
1.00 means cachekit is faster. Results go to ``bench/results.json`` and ``docs/benchmarks.md``.

    .venv/bin/python bench/run.py                 # everything (about a minute or two)
    .venv/bin/python bench/run.py --quick         # fewer, shorter repeats
    .venv/bin/python bench/run.py --only memory   # some scenarios (results are not written)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
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

from harness import Bench, Scenario, Settings, format_ns, format_ratio, measure_sync  # noqa: E402
from peers import ensure_peers, peer_versions  # noqa: E402

GROUPS = ("memory", "redis", "memcached", "bus", "hit_ratio")
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
        line = (f"   {r.library:<14} {(r.label + mark):<42} {format_ns(r.ns_min):>12} "
                f"{format_ns(r.ns_median):>12} {format_ratio(r.ratio):>11}")
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
    out += ["| library | implementation | ns/op (min) | ns/op (median) | peer / cachekit | note |",
            "| --- | --- | ---: | ---: | ---: | --- |"]
    for r in s.rows:
        label = f"**`{r.label}`** (reference)" if r.reference else f"`{r.label}`"
        note = r.note.replace("|", "\\|")
        out.append(f"| {r.library} | {label} | {format_ns(r.ns_min)} | {format_ns(r.ns_median)} | "
                   f"{format_ratio(r.ratio)} | {note} |")
    out.append("")
    out += [f"Note: {n}" for n in s.notes]
    if s.notes:
        out.append("")
    return out


def markdown(machine: dict[str, Any], scenarios: list[Scenario], bus: dict[str, Any] | None,
             work: list[dict[str, Any]], hit_ratio: dict[str, Any] | None = None) -> str:
    """docs/benchmarks.md: how to reproduce, machine, one table per scenario, bus latency."""
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    load = machine.get("load_average_start")
    lines = [
        "# Benchmarks",
        "",
        "<!-- generated by bench/run.py: edit the script, not this file -->",
        "",
        "cachekit compared with the libraries people reach for instead: a plain `dict` (the floor), "
        "cachetools, dogpile.cache, cashews and aiocache in memory; redis-py, pymemcache and the same "
        "peers on Redis and memcached servers on the loopback interface.",
        "",
        "## Reproduce",
        "",
        "```bash",
        "make bench                      # = .venv/bin/python bench/run.py (starts its own servers)",
        ".venv/bin/python bench/run.py --quick             # shorter repeats",
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
        f"- timeit-style: the statement runs in a calibrated loop (about {machine['target_seconds_per_repeat']}"
        f" s per repeat), {machine['repeat']} repeats, garbage collector off; **min** is the least "
        "disturbed repeat, **median** shows the spread. Both include the loop itself "
        f"(about {machine['timing_loop_overhead_ns']} ns per iteration on this machine).",
        "- **peer / cachekit** = the row's min divided by the min of the cachekit row marked *reference*: "
        "above 1.00, cachekit is faster; below, the row is faster than cachekit.",
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


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the tables, write results.json and docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 short repeats, 100 bus iterations")
    parser.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated subset of {','.join(GROUPS)}")
    parser.add_argument("--repeat", type=int, help="repeats per row (default 9, quick 3)")
    parser.add_argument("--write", action="store_true", help="write results even for a subset")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        parser.error(f"unknown scenario group(s) {unknown}; known: {', '.join(GROUPS)}")

    settings = Settings(repeat=3, target=0.03) if args.quick else Settings(repeat=9, target=0.08)
    if args.repeat:
        settings.repeat = args.repeat
    started = time.monotonic()
    ensure_peers()
    machine = machine_info(settings)
    print(f"cachekit benchmarks: {machine['python']}, {machine['cpu_count']} CPUs ({machine['cpu']}), "
          f"{machine['date']}, load {machine['load_average_start']}")
    print(f"timeit-style: best of {settings.repeat} repeats of ~{settings.target}s; "
          "ratio = peer / cachekit (above 1.00: cachekit is faster); * marks the reference row")

    bench = Bench(settings)
    scenarios: list[Scenario] = []
    bus: dict[str, Any] | None = None
    work: list[dict[str, Any]] = []
    hit_ratio: dict[str, Any] | None = None
    try:
        if "memory" in groups:
            from bench_memory import memory_scenarios
            from hotpath import count_all

            scenarios += _guarded("memory", lambda: memory_scenarios(bench))
            try:
                work = count_all()
            except Exception as exc:
                print(f"could not count the hot path: {type(exc).__name__}: {exc}")
        if "redis" in groups:
            from bench_shared import redis_scenarios

            scenarios += _guarded("redis", lambda: redis_scenarios(bench))
        if "memcached" in groups:
            from bench_shared import memcached_scenarios

            scenarios += _guarded("memcached", lambda: memcached_scenarios(bench))
        for s in scenarios:
            s.finish()
            print_scenario(s)
        print_work(work)
        if "bus" in groups:
            from bench_bus import bus_latency

            try:
                bus = bus_latency(100 if args.quick else 300)
            except Exception as exc:
                traceback.print_exc()
                bus = {"status": "n/a", "note": f"{type(exc).__name__}: {exc}"}
            print_bus(bus)
        if "hit_ratio" in groups:
            from hit_ratio import hit_ratios, print_table

            hit_ratio = hit_ratios(quick=args.quick)
            print_table(hit_ratio)
    finally:
        bench.close()

    machine["load_average_end"] = _load()
    machine["seconds"] = round(time.monotonic() - started, 1)
    print(f"\ndone in {machine['seconds']} s")
    if args.no_write or (set(groups) != set(GROUPS) and not args.write):
        print("results not written (subset or --no-write; use --write to force)")
        return 0
    RESULTS.write_text(json.dumps({"machine": machine, "scenarios": [s.as_dict() for s in scenarios],
                                   "work_per_operation": work, "bus": bus, "hit_ratio": hit_ratio},
                                  indent=2) + "\n")
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(markdown(machine, scenarios, bus, work, hit_ratio))
    print(f"wrote {RESULTS.relative_to(ROOT)} and {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
