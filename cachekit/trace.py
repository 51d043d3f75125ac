"""Access traces: a compact columnar record of cache operations (time, region, key hash, op, hit,
value size, load time). ``runtime.trace()`` records one while a workload runs; ``Trace.record`` is the
cheap append it calls; :mod:`cachekit.simulate` replays one. pandas and numpy are imported only by the
methods that build or read frames.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Any

from .errors import require

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["OPS", "RegionEvents", "Trace"]

#: operation codes of a trace, by name; ``Trace.GET`` etc. are the same numbers
OPS = {"get": 0, "put": 1, "delete": 2, "load": 3}
OP_NAMES = tuple(OPS)
GET, PUT, DELETE, LOAD = 0, 1, 2, 3
_MASK64 = (1 << 64) - 1
_MIX = 0x9E3779B97F4A7C15  # Fibonacci hashing: spreads key hashes before sampling


class Trace:
    """A columnar log of cache operations, cheap to append to and easy to turn into a DataFrame.

    Columns (``array.array``, one entry per event): ``time`` (seconds, the runtime clock), ``region``
    (a small code; ``regions[code]`` is the name), ``key_hash`` (64-bit hash of the key: keys
    themselves are never kept), ``op`` (``get`` / ``put`` / ``delete`` / ``load``, see :data:`OPS`),
    ``hit`` (``get``: found in the cache), ``size`` (bytes of the value, 0 when unknown) and
    ``load_time`` (seconds a loader ran; on ``load`` events, or on the ``get`` miss it followed).

    ``sample`` < 1 keeps the events of a fixed share of the keys (chosen by key hash, so every access to
    a kept key is kept and reuse is preserved); the simulator scales sizes and counts back.
    ``max_events`` bounds the memory: events past it are dropped and counted in ``dropped``.

    >>> t = Trace()
    >>> t.record(0.0, "users", "user:1", "get", hit=False)
    True
    >>> t.record(0.1, "users", "user:1", Trace.LOAD, load_time=0.02)
    True
    >>> len(t), t.regions
    (2, ['users'])
    """

    GET, PUT, DELETE, LOAD = GET, PUT, DELETE, LOAD
    columns = ("time", "region", "key_hash", "op", "hit", "size", "load_time")

    def __init__(self, *, sample: float = 1.0, max_events: int | None = None) -> None:
        if not 0.0 < sample <= 1.0:
            raise ValueError(f"sample must be in (0, 1], not {sample!r}")
        if max_events is not None and max_events < 0:
            raise ValueError(f"max_events must be >= 0, not {max_events!r}")
        self.sample = float(sample)
        self.max_events = max_events
        self.dropped = 0
        self.regions: list[str] = []
        self._codes: dict[str, int] = {}
        self._threshold = None if sample >= 1.0 else int(sample * (1 << 64))
        self.time = array("d")
        self.region = array("H")
        self.key_hash = array("q")
        self.op = array("B")
        self.hit = array("B")
        self.size = array("q")
        self.load_time = array("d")

    # -- recording ------------------------------------------------------------------------------
    def region_code(self, name: str) -> int:
        """The code of region ``name`` in this trace (added on first use)."""
        code = self._codes.get(name)
        if code is None:
            code = self._codes[name] = len(self.regions)
            self.regions.append(name)
        return code

    def record(self, time: float, region: str, key: Any, op: int | str, hit: bool = False, size: int = 0,
               load_time: float = 0.0) -> bool:
        """Append one event; ``False`` when it was not kept (not sampled, or ``max_events`` reached).

        ``key`` is hashed with ``hash`` (a string key's hash varies between processes unless
        ``PYTHONHASHSEED`` is set; an ``int`` is its own hash); ``op`` a code (``Trace.GET``...) or a
        name (``"get"``...).
        """
        h = hash(key)  # an int below 2**61 - 1 is its own hash (but -1 hashes to -2)
        if self._threshold is not None and ((h * _MIX) & _MASK64) >= self._threshold:
            return False
        if self.max_events is not None and len(self.time) >= self.max_events:
            self.dropped += 1
            return False
        code = self._codes.get(region)
        if code is None:
            code = self.region_code(region)
        self.time.append(time)
        self.region.append(code)
        self.key_hash.append(h)
        self.op.append(op if type(op) is int else OPS[op])  # type: ignore[index]
        self.hit.append(1 if hit else 0)
        self.size.append(size)
        self.load_time.append(load_time)
        return True

    def __len__(self) -> int:
        return len(self.time)

    def __repr__(self) -> str:
        sampled = f", sample={self.sample}" if self.sample < 1 else ""
        return f"<Trace: {len(self)} events, regions={self.regions}{sampled}>"

    # -- frames ---------------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per event: ``time`` (float), ``region`` and ``op`` (categorical), ``key_hash``
        (int64), ``hit`` (bool), ``size`` (int64), ``load_time`` (float)."""
        pd = require("pandas", "pandas")
        np = require("numpy", "pandas")
        return pd.DataFrame({
            "time": np.frombuffer(self.time, dtype=np.float64).copy(),
            "region": pd.Categorical.from_codes(np.frombuffer(self.region, dtype=np.uint16).astype(np.int64),
                                                categories=self.regions or ["default"]),
            "key_hash": np.frombuffer(self.key_hash, dtype=np.int64).copy(),
            "op": pd.Categorical.from_codes(np.frombuffer(self.op, dtype=np.uint8).astype(np.int64),
                                            categories=list(OP_NAMES)),
            "hit": np.frombuffer(self.hit, dtype=np.uint8).astype(bool),
            "size": np.frombuffer(self.size, dtype=np.int64).copy(),
            "load_time": np.frombuffer(self.load_time, dtype=np.float64).copy(),
        })

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, sample: float = 1.0) -> Trace:
        """A trace from a frame shaped like :meth:`to_frame` (``time``, ``region``, ``key_hash``
        and ``op`` are required; ``op`` as names or codes; ``hit``, ``size`` and ``load_time`` default
        to ``False`` / 0). Rows are taken in the frame's order."""
        pd = require("pandas", "pandas")
        np = require("numpy", "pandas")
        missing = [c for c in ("time", "region", "key_hash", "op") if c not in frame.columns]
        if missing:
            raise ValueError(f"a trace frame needs the columns {missing}; it has {list(frame.columns)}")
        trace = cls(sample=sample)
        n = len(frame)
        column_region = frame["region"]
        if isinstance(column_region.dtype, pd.CategoricalDtype):  # keeps the trace's region codes
            names, codes = list(column_region.cat.categories), column_region.cat.codes.to_numpy()
        else:
            codes, names = pd.factorize(column_region.astype(str), sort=False)
        for name in names:
            trace.region_code(str(name))
        ops = frame["op"]
        if ops.dtype.kind in "iu":
            op_codes = ops.to_numpy(dtype=np.int64)
        else:
            unknown = set(ops.astype(str).unique()) - set(OPS)
            if unknown:
                raise ValueError(f"unknown op(s) {sorted(unknown)}; known: {', '.join(OPS)}")
            op_codes = ops.astype(str).map(OPS).to_numpy(dtype=np.int64)

        def column(name: str, dtype: Any, default: Any) -> Any:
            return frame[name].to_numpy(dtype=dtype) if name in frame.columns else np.full(n, default, dtype=dtype)

        trace.time = array("d", frame["time"].to_numpy(dtype=np.float64).tobytes())
        trace.region = array("H", codes.astype(np.uint16).tobytes())
        trace.key_hash = array("q", frame["key_hash"].to_numpy(dtype=np.int64).tobytes())
        trace.op = array("B", op_codes.astype(np.uint8).tobytes())
        trace.hit = array("B", column("hit", bool, False).astype(np.uint8).tobytes())
        trace.size = array("q", column("size", np.int64, 0).tobytes())
        trace.load_time = array("d", column("load_time", np.float64, 0.0).tobytes())
        return trace

    # -- synthetic workloads --------------------------------------------------------------------
    @classmethod
    def synthetic_zipf(cls, n_keys: int, n_events: int, alpha: float = 0.99, seed: int = 0, *,
                       region: str = "default", rate: float = 100.0, scan_every: int | None = None,
                       scan_length: int = 0, load_time: float = 0.0) -> Trace:
        """A workload of ``get`` events: keys drawn from a Zipf(``alpha``) law over ``n_keys`` keys
        (popularity in a random order of the keys), ``rate`` events per second on average.

        ``scan_every`` / ``scan_length``: after every ``scan_every`` Zipf reads, a scan reads
        ``scan_length`` keys never seen before (scan pollution). ``load_time`` is recorded on every
        event as the cost of loading its key. Events carry ``hit=False``: the workload was not run
        through a cache. Needs numpy (the ``pandas`` extra).
        """
        np = require("numpy", "pandas")
        rng = np.random.default_rng(seed)
        weights = 1.0 / np.arange(1, n_keys + 1, dtype=np.float64) ** alpha
        cdf = np.cumsum(weights)
        cdf /= cdf[-1]
        ranks = np.minimum(np.searchsorted(cdf, rng.random(n_events), side="right"), n_keys - 1)
        keys = rng.permutation(n_keys).astype(np.int64)[ranks]
        if scan_every and scan_length:
            parts, fresh = [], n_keys
            for start in range(0, n_events, scan_every):
                parts.append(keys[start:start + scan_every])
                if start + scan_every < n_events:
                    parts.append(np.arange(fresh, fresh + scan_length, dtype=np.int64))
                    fresh += scan_length
            keys = np.concatenate(parts)
        times = np.cumsum(rng.exponential(1.0 / rate, size=len(keys)))
        trace = cls()
        trace.region_code(region)
        n = len(keys)
        trace.time = array("d", times.tobytes())
        trace.region = array("H", bytes(2 * n))
        trace.key_hash = array("q", keys.tobytes())
        trace.op = array("B", bytes(n))
        trace.hit = array("B", bytes(n))
        trace.size = array("q", bytes(8 * n))
        trace.load_time = array("d", np.full(n, float(load_time)).tobytes())
        return trace



class RegionEvents:
    """The events of one region as plain lists (fast to iterate), with the load-time estimates."""

    def __init__(self, trace: Trace, code: int | None) -> None:
        if code is None or len(trace.regions) <= 1:
            self.time = trace.time.tolist()
            self.key = trace.key_hash.tolist()
            self.op = trace.op.tolist()
            load_time, keys_all = trace.load_time, self.key
        else:
            keep = [i for i, r in enumerate(trace.region) if r == code]
            time, key, op = trace.time, trace.key_hash, trace.op
            self.time = [time[i] for i in keep]
            self.key = [key[i] for i in keep]
            self.op = [op[i] for i in keep]
            load_time = array("d", (trace.load_time[i] for i in keep))
            keys_all = self.key
        totals: dict[int, float] = {}
        counts: dict[int, int] = {}
        for k, lt in zip(keys_all, load_time, strict=True):
            if lt > 0:
                totals[k] = totals.get(k, 0.0) + lt
                counts[k] = counts.get(k, 0) + 1
        #: mean load time of each key that has one recorded, and the mean over all recorded loads
        self.key_load_time = {k: totals[k] / counts[k] for k in totals}
        n = sum(counts.values())
        self.mean_load_time = (sum(totals.values()) / n) if n else 0.0

    def __len__(self) -> int:
        return len(self.time)


