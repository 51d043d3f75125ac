"""Measurement and reporting helpers shared by the benchmark scenarios.

Timing follows :mod:`timeit`: a statement is compiled into a tight loop and the loop count is
calibrated so that one repeat lasts about ``target`` seconds, with the garbage collector off.
Asynchronous statements are awaited in the same kind of loop inside one event loop, so their
per-operation figure includes the ``await`` but not the loop start-up.

The rows of a scenario are measured *interleaved*: repeat 1 of every row, then repeat 2 of every
row, and so on. On a shared machine the load drifts during a run; interleaving spreads the drift over
all rows instead of penalising whichever row ran during a busy moment, which keeps the ratios honest.
A row reports the minimum (the least disturbed repeat, used for ratios) and the median.

Workload rows (:meth:`Bench.each`) are not calibrated: a timed run is one pass over a slice of a
precomputed key sequence, and in a ``paired`` scenario the ratio is the median over the side-by-side
pairs of (row's pass / reference's pass), with min..max (:func:`format_spread`).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import statistics
import time
import timeit
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ANY", "Bench", "Row", "Scenario", "Settings", "Unavailable", "format_spread", "measure_sync"]

#: ``expect=ANY``: do not check what the measured statement returns.
ANY: Any = object()


class Unavailable(Exception):
    """A peer (or a server) this row needs is not there: the row is reported as "n/a"."""


@dataclass
class Settings:
    """How long to measure: ``repeat`` runs of about ``target`` seconds each, per row."""

    repeat: int = 9
    target: float = 0.08


@dataclass
class Row:
    """One implementation measured in one scenario.

    ``ns_min`` / ``ns_median`` are nanoseconds per operation; ``ratio`` is this row's ``ns_min``
    divided by the scenario's cachekit reference row (above 1: cachekit is faster). A row whose peer
    could not be installed, imported or run has ``status`` ``"n/a"`` and says why in ``note``.
    """

    label: str
    library: str
    ns_min: float | None = None
    ns_median: float | None = None
    ratio: float | None = None
    reference: bool = False
    status: str = "ok"
    note: str = ""
    number: int = 0
    #: paired scenarios: the per-repeat ratios' spread (``ratio`` is then their median)
    ratio_min: float | None = None
    ratio_max: float | None = None
    #: seconds per operation of every repeat, in order (paired scenarios divide repeat i by repeat i)
    times: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data (without the raw repeat times)."""
        out = asdict(self)
        del out["times"]
        return out


@dataclass
class _Case:
    row: Row
    prepare: Callable[[], Callable[[int], float]]  # set-up + check; returns run(number) -> seconds
    ops: int = 0  # > 0: run(1) does ``ops`` operations (one pass over a precomputed sequence), never calibrated


@dataclass
class Scenario:
    """A titled group of rows; ``ratio`` is computed against the row marked ``reference``.

    ``paired``: repeat *i* of a row is divided by repeat *i* of the reference (they ran next to each
    other), and ``ratio`` is the median of those ratios with their min..max beside it; otherwise
    ``ratio`` is min / min.
    """

    key: str
    title: str
    description: str = ""
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    paired: bool = False
    #: :meth:`Bench.each` rows: each sequence is cut into this many slices, and a repeat times one slice
    #: (the same slice for every row), so there are ``repeat * slices`` side-by-side pairs
    slices: int = 1
    _cases: list[_Case] = field(default_factory=list, repr=False)

    def unavailable(self, label: str, library: str, reason: str) -> Row:
        """Record a row that cannot be measured (never raises)."""
        row = Row(label, library, status="n/a", note=reason)
        self.rows.append(row)
        return row

    def case(self, row: Row, prepare: Callable[[], Callable[[int], float]]) -> Row:
        """Queue a row; :meth:`Bench.execute` prepares and times it."""
        self.rows.append(row)
        self._cases.append(_Case(row, prepare))
        return row

    def finish(self) -> None:
        """Fill ``ratio`` of every measured row from the reference row."""
        ref = next((r for r in self.rows if r.reference and r.ns_min), None)
        for row in self.rows:
            if ref is None or row.ns_min is None:
                continue
            if self.paired and len(row.times) == len(ref.times) and row.times:
                ratios = [t / r for t, r in zip(row.times, ref.times, strict=True)]
                row.ratio = statistics.median(ratios)
                row.ratio_min, row.ratio_max = min(ratios), max(ratios)
            else:
                row.ratio = row.ns_min / ref.ns_min  # type: ignore[operator]

    def row(self, label: str) -> Row | None:
        """The row with this label (``None`` if there is none)."""
        return next((r for r in self.rows if r.label == label), None)

    def as_dict(self) -> dict[str, Any]:
        """The scenario as JSON-ready data."""
        return {"key": self.key, "title": self.title, "description": self.description,
                "notes": self.notes, "rows": [r.as_dict() for r in self.rows]}


class _LoopCase(_Case):
    """A :meth:`Bench.loop` case: its op count is known once ``prepare`` built the sequence."""

    def __init__(self, row: Row, prepare: Callable[[], Callable[[int], float]], ops_box: list[int]) -> None:
        super().__init__(row, prepare)
        self.ops_box = ops_box


def _fail(row: Row, exc: BaseException) -> None:
    row.status = "n/a"
    if isinstance(exc, Unavailable):
        row.note = str(exc)
    else:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        row.note = f"failed: {detail[:160]}"


def _calibrate(run: Callable[[int], float], target: float) -> int:
    """A loop count for which ``run(count)`` takes about ``target`` seconds."""
    number = 1
    while True:
        elapsed = run(number)
        if elapsed >= target / 10 or number >= 10**8:
            break
        number *= 10 if elapsed < target / 100 else 2
    return max(1, int(number * target / max(elapsed, 1e-9)))


def measure_sync(stmt: str, namespace: dict[str, Any], settings: Settings) -> tuple[list[float], int]:
    """Seconds per execution of ``stmt`` (names resolved in ``namespace``), one value per repeat."""
    timer = timeit.Timer(stmt, globals=namespace)
    number = _calibrate(timer.timeit, settings.target)
    return [t / number for t in timer.repeat(settings.repeat, number)], number


def _async_runner(stmt: str, namespace: dict[str, Any], loop: asyncio.AbstractEventLoop) -> Callable[[int], float]:
    scope = dict(namespace)
    exec(  # the same tight loop timeit builds, awaiting the statement
        "async def _body(_it):\n    for _i in _it:\n        await " + stmt + "\n", scope)
    body = scope["_body"]

    def run(number: int) -> float:
        it = itertools.repeat(None, number)
        enabled = gc.isenabled()
        gc.disable()
        try:
            started = time.perf_counter()
            loop.run_until_complete(body(it))
            return time.perf_counter() - started
        finally:
            if enabled:
                gc.enable()

    return run


class Bench:
    """Queues cases into scenarios and times them: one event loop for the async ones, one :class:`Settings`.

    A case is a ``setup()`` returning the namespace the statement runs in, and a statement. Before
    timing, the statement runs once and its result is compared with ``expect``, so that a hit that
    is secretly a miss (or a peer that misbehaves) shows as a failure, never as a fast number.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()

    def wait(self, awaitable: Any) -> Any:
        """Run ``awaitable`` to completion on the bench loop (for async set-up)."""
        return self.loop.run_until_complete(awaitable)

    def sync(self, scenario: Scenario, label: str, library: str, setup: Callable[[], dict[str, Any]],
             stmt: str, *, expect: Any = ANY, reference: bool = False, note: str = "") -> Row:
        """Queue ``stmt`` (a synchronous call) in the namespace ``setup()`` builds."""

        def prepare() -> Callable[[int], float]:
            namespace = setup()
            _check(eval(stmt, namespace), expect, stmt)
            return timeit.Timer(stmt, globals=namespace).timeit

        return scenario.case(Row(label, library, reference=reference, note=note), prepare)

    def async_(self, scenario: Scenario, label: str, library: str, setup: Callable[[], dict[str, Any]],
               stmt: str, *, expect: Any = ANY, reference: bool = False, note: str = "") -> Row:
        """Queue ``await stmt`` in the namespace ``setup()`` builds, timed inside the bench loop."""

        def prepare() -> Callable[[int], float]:
            namespace = setup()
            _check(self.wait(eval(stmt, namespace)), expect, stmt)
            return _async_runner(stmt, namespace, self.loop)

        note = f"async; {note}" if note else "async: per await in one event loop"
        return scenario.case(Row(label, library, reference=reference, note=note), prepare)

    def each(self, scenario: Scenario, label: str, library: str, setup: Callable[[], dict[str, Any]],
             body: str, *, probe: str | None = None, expect: Any = ANY, reference: bool = False,
             note: str = "", seq: str = "seq") -> Row:
        """Queue ``for k in <seq>: <body>`` (a statement) over the precomputed sequence ``setup()[seq]``.

        The sequence is cut into ``scenario.slices`` equal slices; timed run *i* is one pass over
        slice *i* (cycling), and every row's run *i* covers the same keys; ns/op = the pass / its
        length. Before timing, one untimed pass over the whole sequence warms the store, then
        ``probe`` (an expression over ``k``) is evaluated for the sequence's first keys and must
        equal ``expect``: a hit that is secretly a miss fails the row.
        """
        ops = [0]

        def prepare() -> Callable[[int], float]:
            namespace = setup()
            keys = namespace[seq]
            size = max(1, len(keys) // scenario.slices)
            parts = [keys[i * size:(i + 1) * size] for i in range(min(scenario.slices, len(keys)))]
            ops[0] = size
            scope = dict(namespace)
            exec("def _pass(_seq):\n    for k in _seq:\n        " + body + "\n", scope)
            one_pass = scope["_pass"]
            one_pass(keys)
            if probe is not None:
                for k in keys[:50]:
                    _check(eval(probe, {**namespace, "k": k}), expect, probe)
            turn = itertools.cycle(parts)

            def run(number: int) -> float:
                enabled = gc.isenabled()
                gc.disable()
                try:
                    part = next(turn)
                    started = time.perf_counter()
                    for _ in range(number):
                        one_pass(part)
                    return time.perf_counter() - started
                finally:
                    if enabled:
                        gc.enable()

            return run

        row = Row(label, library, reference=reference, note=note)
        scenario.rows.append(row)
        scenario._cases.append(_LoopCase(row, prepare, ops))
        return row

    def execute(self, scenario: Scenario) -> Scenario:
        """Prepare and calibrate every queued row, then time them interleaved; failures become n/a."""
        ready: list[tuple[Row, Callable[[int], float], int]] = []
        for case in scenario._cases:
            try:
                run = case.prepare()
                if isinstance(case, _LoopCase):
                    case.row.number = 1
                    case.ops = case.ops_box[0]
                else:
                    case.row.number = _calibrate(run, self.settings.target)
            except Exception as exc:  # a peer that breaks must not stop the run
                _fail(case.row, exc)
                continue
            ready.append((case.row, run, case.row.number * max(case.ops, 1)))
        scenario._cases.clear()
        for _ in range(self.settings.repeat * scenario.slices):
            for row, run, ops in ready:
                if row.status != "ok":
                    continue
                try:
                    row.times.append(run(row.number) / ops)
                except Exception as exc:
                    _fail(row, exc)
        for row, _, _ in ready:
            if row.status == "ok" and row.times:
                row.ns_min = min(row.times) * 1e9
                row.ns_median = statistics.median(row.times) * 1e9
        scenario.finish()
        return scenario

    def close(self) -> None:
        """Close the event loop."""
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


def _check(got: Any, expect: Any, stmt: str) -> None:
    if expect is not ANY and got != expect:
        raise AssertionError(f"{stmt} returned {got!r}, expected {expect!r}")


def format_ns(ns: float | None) -> str:
    """``1234.5`` -> ``"1,234.5"``; ``None`` -> ``"n/a"``."""
    if ns is None:
        return "n/a"
    if ns >= 100_000:
        return f"{ns:,.0f}"
    return f"{ns:,.1f}"


def format_ratio(ratio: float | None) -> str:
    """``2.345`` -> ``"2.35x"``."""
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def format_spread(row: Row) -> str:
    """A paired row's ratio with its spread: ``"1.52x (1.40..1.61)"``."""
    if row.ratio is None:
        return "n/a"
    if row.ratio_min is None or row.ratio_max is None:
        return format_ratio(row.ratio)
    return f"{row.ratio:.2f}x ({row.ratio_min:.2f}..{row.ratio_max:.2f})"
