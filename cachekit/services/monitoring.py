"""CacheMonitoringService: the live counters of ``runtime.stats`` by provider, plus statistics recorded by hand."""

from __future__ import annotations

import math
import threading
import weakref
from collections import deque
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..config.diagnostics import did_you_mean, one_of
from .base import Service, known_providers, utc_now
from .result import Result, ServiceFailure, guarded
from .types import LIVE_COUNTER, CacheProviderId, CacheStatistic, CacheStatsType, ProviderSummary

if TYPE_CHECKING:
    from ..runtime.runtime import Runtime


class _Recorder:
    """Recorded statistics of one runtime (bounded)."""

    def __init__(self, max_records: int = 100_000) -> None:
        self.records: deque[CacheStatistic] = deque(maxlen=max_records)
        self.lock = threading.Lock()


_RECORDERS: weakref.WeakKeyDictionary[Any, _Recorder] = weakref.WeakKeyDictionary()
_RECORDERS_LOCK = threading.Lock()


def _recorder(rt: Runtime) -> _Recorder:
    with _RECORDERS_LOCK:
        rec = _RECORDERS.get(rt)
        if rec is None:
            rec = _RECORDERS[rt] = _Recorder()
        return rec


def _as_utc(value: datetime | float | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    if not isinstance(value, datetime):
        raise ServiceFailure(f"expected a datetime, not {type(value).__name__}", "invalid")
    return value.astimezone(timezone.utc)  # a naive datetime is taken as local time


def _known_provider(rt: Runtime, provider_id: Any) -> CacheProviderId:
    name = str(provider_id)
    known = known_providers(rt)
    if name not in known:
        raise ServiceFailure(f"unknown provider {name!r}; known: {one_of(known)}{did_you_mean(name, known)}",
                             "not_found")
    return CacheProviderId(name)


class CacheMonitoringService(Service):
    """Record statistics and read them back, alone or summed with the runtime's live counters."""

    async def record_statistic(self, provider_id: str, stat_type: CacheStatsType | str, value: float = 1,
                               *, region: str | None = None,
                               timestamp: datetime | None = None) -> Result[CacheStatistic]:
        """Record ``value`` of ``stat_type`` for a provider (timestamp: the runtime clock's now)."""

        def work() -> CacheStatistic:
            rt = self.runtime
            pid = _known_provider(rt, provider_id)
            kind = CacheStatsType.parse(stat_type)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ServiceFailure(f"a statistic's value is a finite number, not {value!r}", "invalid")
            when = _as_utc(timestamp) or utc_now(rt)
            stat = CacheStatistic(provider_id=pid, stat_type=kind, value=float(value), timestamp=when,
                                  region=region)
            rec = _recorder(rt)
            with rec.lock:
                rec.records.append(stat)
            return stat

        return await guarded(work)

    async def get_provider_statistics(self, provider_id: str, start_time: datetime | None = None,
                                      end_time: datetime | None = None,
                                      stat_type: CacheStatsType | str | None = None,
                                      ) -> Result[list[CacheStatistic]]:
        """Statistics of a provider between ``start_time`` and ``end_time`` (inclusive; naive
        datetimes are local time), optionally of one type, oldest first: the recorded ones, then
        (when the window includes now) the live counters of the regions on the provider, summed,
        one ``live=True`` statistic per non-zero counter (the numbers ``runtime.stats`` shows)."""

        def work() -> list[CacheStatistic]:
            rt = self.runtime
            pid = _known_provider(rt, provider_id)
            start, end = _as_utc(start_time), _as_utc(end_time)
            kind = CacheStatsType.parse(stat_type) if stat_type is not None else None
            rec = _recorder(rt)
            with rec.lock:
                records = list(rec.records)
            now = utc_now(rt)
            rows = [row for row in rt.stats.rows() if row["provider"] == pid]
            for stat_kind, counter in LIVE_COUNTER.items():
                total = sum(int(row[counter]) for row in rows)
                if total:
                    records.append(CacheStatistic(provider_id=pid, stat_type=stat_kind, value=float(total),
                                                  timestamp=now, live=True))
            return [s for s in records if s.provider_id == pid and (kind is None or s.stat_type is kind)
                    and (start is None or s.timestamp >= start) and (end is None or s.timestamp <= end)]

        return await guarded(work)

    async def get_provider_summary(self, provider_id: str) -> Result[ProviderSummary]:
        """Totals for a provider: the live counters of every region on it plus recorded statistics."""

        def work() -> ProviderSummary:
            rt = self.runtime
            pid = _known_provider(rt, provider_id)
            rows = [row for row in rt.stats.rows() if row["provider"] == pid]
            counters = tuple(LIVE_COUNTER.values())
            live = {c: sum(int(row[c]) for row in rows) for c in counters}
            rec = _recorder(rt)
            with rec.lock:
                records = [s for s in rec.records if s.provider_id == pid]
            recorded: dict[str, float] = {}
            for s in records:
                recorded[s.stat_type.value] = recorded.get(s.stat_type.value, 0.0) + s.value
            totals = {c: float(live[c]) for c in counters}
            for kind, counter in LIVE_COUNTER.items():
                totals[counter] += recorded.get(kind.value, 0.0)
            lookups = totals["hits"] + totals["misses"]
            latencies = [s.value for s in records if s.stat_type is CacheStatsType.LATENCY]
            return ProviderSummary(
                provider_id=pid, hit_ratio=totals["hits"] / lookups if lookups else None,
                regions=sorted({row["region"] for row in rows}), recorded=recorded, live=live,
                average_latency=sum(latencies) / len(latencies) if latencies else None, **totals,
            )

        return await guarded(work)
