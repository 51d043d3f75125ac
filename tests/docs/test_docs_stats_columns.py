"""docs/stats.md documents every column of every statistics frame: the table after each
``<!-- columns: ... -->`` marker lists the frame's index levels (``(index)``) and columns, in order,
and they are exactly what the frame has."""

from __future__ import annotations

import re

import pytest
from docblocks import ROOT
from servers import need_module

need_module("pandas")

from cachekit import CacheConfig, FakeClock  # noqa: E402

STATS_MD = ROOT / "docs" / "stats.md"


def documented() -> dict[str, tuple[list[str], list[str]]]:
    """``{frame: (index levels, columns)}`` from the tables of docs/stats.md."""
    tables: dict[str, tuple[list[str], list[str]]] = {}
    lines = STATS_MD.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        marker = re.fullmatch(r"<!-- columns: (.+) -->", line.strip())
        if not marker:
            continue
        index: list[str] = []
        columns: list[str] = []
        for row in lines[i + 3:]:                       # after the header and the --- line
            if not row.startswith("|"):
                break
            cell = row.split("|")[1].strip()
            names = re.findall(r"`([^`]+)`", cell)
            assert names, f"a row without a column name in {marker[1]}: {row}"
            (index if cell.endswith("(index)") else columns).extend(names)
        tables[marker[1]] = (index, columns)
    return tables


@pytest.fixture(scope="module")
def frames() -> dict[str, object]:
    """Every frame, from a runtime that used an L1 region, a loader, a latency and an invalidation."""
    runtime = CacheConfig(providers={"local": {"type": "memory"}},
                          regions={"users": {"provider": "file", "ttl": 60,
                                             "l1": {"provider": "local", "ttl": 5}}}).compile(clock=FakeClock())
    users = runtime.region("users")
    users.remember("u:1", None, lambda: "Ada")
    users.get("u:1")
    runtime.stats.sample()
    runtime.clock.advance(10)
    users.get("u:2")
    runtime.invalidate("u:*", region="users")
    runtime.stats.sample()
    stats = runtime.stats
    out = {"to_frame()": stats.to_frame(), 'to_frame(by="tier")': stats.to_frame(by="tier"),
           "latency_frame()": stats.latency_frame(), "invalidations_frame()": stats.invalidations_frame(),
           "timeseries()": stats.timeseries(), "timeseries(rates=True)": stats.timeseries(rates=True)}
    runtime.close()
    return out


def test_every_frame_has_its_table() -> None:
    assert set(documented()) == {"to_frame()", 'to_frame(by="tier")', "latency_frame()", "invalidations_frame()",
                                 "timeseries()"}


@pytest.mark.parametrize("name", ["to_frame()", 'to_frame(by="tier")', "latency_frame()",
                                  "invalidations_frame()", "timeseries()"])
def test_the_documented_columns_are_the_frames_columns(name: str, frames: dict[str, object]) -> None:
    index, columns = documented()[name]
    frame = frames[name]
    assert not frame.empty                              # type: ignore[attr-defined]
    assert index == list(frame.index.names)             # type: ignore[attr-defined]
    assert columns == list(frame.columns)               # type: ignore[attr-defined]


def test_rates_are_the_timeseries_columns_but_hit_ratio(frames: dict[str, object]) -> None:
    _, columns = documented()["timeseries()"]
    rates = frames["timeseries(rates=True)"]
    assert not rates.empty                              # type: ignore[attr-defined]
    assert list(rates.columns) == [c for c in columns if c != "hit_ratio"]  # type: ignore[attr-defined]
    assert "`hit_ratio`,\nwhich is no count" in STATS_MD.read_text(encoding="utf-8")


def test_rows_carry_the_frame_columns_and_the_two_documented_extras(frames: dict[str, object]) -> None:
    index, columns = documented()["to_frame()"]
    runtime = CacheConfig().compile(clock=FakeClock())
    runtime.region("default").get("k")
    keys = set(runtime.stats.rows()[0])
    runtime.close()
    assert keys == {*index, *columns, "expirations", "load_failures"}
    assert "`rows()` (and `snapshot()`) also carry `expirations` and `load_failures`" in STATS_MD.read_text(
        encoding="utf-8")
