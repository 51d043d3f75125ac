"""``Runtime.edit()``: the one transaction through which the services, the notebook panel and
``update_region`` change the live config (one lock; all or nothing)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from cachekit import CacheConfig, ConfigError, Runtime
from cachekit.config.checks import config_data
from cachekit.config.models import EventBasedRule
from cachekit.services import CacheProviderService, CacheRegionService

WAIT = 10  # seconds: a bound on waiting for another thread, never reached when things work


@pytest.fixture
def rt() -> Runtime:
    runtime = CacheConfig(regions={"a": {"ttl": 60}, "b": {"ttl": 60}}).compile()
    yield runtime
    runtime.close()


def _in_thread(target: object) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()  # type: ignore[operator]
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def test_an_edit_is_applied_on_exit(rt: Runtime) -> None:
    users = rt.region("a")
    with rt.edit() as config:
        assert config is rt.config  # the live config itself: references to it stay valid
        config.regions["a"].ttl = 5
        config.regions["c"] = config.regions["b"].model_copy(update={"ttl": 7})
    assert rt.region("a") is users and users.policy.ttl == 5
    assert rt.region("c").policy.ttl == 7


def test_two_threads_editing_at_once_both_land(rt: Runtime) -> None:
    a_inside, release_a, b_inside = threading.Event(), threading.Event(), threading.Event()

    def edit_a() -> None:
        with rt.edit() as config:
            a_inside.set()
            assert release_a.wait(WAIT)
            config.regions["a"].ttl = 10

    def edit_b() -> None:  # a services edit and update_region take the same lock
        assert a_inside.wait(WAIT)
        result = asyncio.run(CacheRegionService(rt).update_region("b", ttl=20))
        assert result.is_success(), result.error
        b_inside.set()
        rt.update_region("a", max_size=99)

    thread_a, errors_a = _in_thread(edit_a)
    thread_b, errors_b = _in_thread(edit_b)
    assert a_inside.wait(WAIT)
    assert not b_inside.wait(0.2)  # B waits for A's transaction instead of interleaving with it
    release_a.set()
    thread_a.join(WAIT)
    thread_b.join(WAIT)
    assert errors_a == [] and errors_b == []
    assert (rt.config.regions["a"].ttl, rt.config.regions["a"].max_size, rt.config.regions["b"].ttl) == (10, 99, 20)
    assert (rt.region("a").policy.ttl, rt.region("a").policy.max_size, rt.region("b").policy.ttl) == (10, 99, 20)


def test_concurrent_read_modify_write_edits_lose_nothing(rt: Runtime) -> None:
    rt.update_region("a", max_size=1)
    start = threading.Barrier(4)

    def bump() -> None:
        start.wait(WAIT)
        for _ in range(25):
            with rt.edit() as config:
                current = config.regions["a"].max_size
                threading.Event().wait(0.0001)  # let the other threads run between the read and the write
                config.regions["a"].max_size = current + 1

    workers = [_in_thread(bump) for _ in range(4)]
    for thread, _ in workers:
        thread.join(WAIT * 3)
    assert [e for _, errors in workers for e in errors] == []
    assert rt.config.regions["a"].max_size == 1 + 4 * 25
    assert rt.region("a").policy.max_size == 1 + 4 * 25


def test_an_exception_in_the_edit_leaves_the_live_config_unchanged(rt: Runtime) -> None:
    rt.region("a").put("k", "v")
    before = config_data(rt.config)
    with pytest.raises(RuntimeError, match="changed my mind"), rt.edit() as config:
        config.regions["a"].ttl = 1
        config.regions["new"] = config.regions["b"].model_copy()
        config.rules.append(EventBasedRule(name="r", events=["e"], pattern="x:*"))
        del config.regions["b"]
        raise RuntimeError("changed my mind")
    assert config_data(rt.config) == before
    assert rt.region("a").policy.ttl == 60 and rt.region("a").get("k") == "v"


def test_an_invalid_edit_raises_and_leaves_the_live_config_unchanged(rt: Runtime) -> None:
    before = config_data(rt.config)
    with pytest.raises(ConfigError, match="nope"), rt.edit() as config:
        config.regions["a"].ttl = 1
        config.regions["a"].provider = "nope"  # valid as a field, invalid as a config: no such provider
    assert config_data(rt.config) == before
    assert rt.region("a").policy.ttl == 60
    with rt.edit() as config:  # the lock was released: the next edit goes through
        config.regions["a"].ttl = 30
    assert rt.region("a").policy.ttl == 30


def test_a_rejected_update_region_changes_nothing(rt: Runtime) -> None:
    """``update_region`` (what the notebook panel calls) is one edit: the ttl it set before the
    provider turned out invalid is rolled back with it."""
    before = config_data(rt.config)
    with pytest.raises(ConfigError):
        rt.update_region("a", ttl=1, provider="nope")
    assert config_data(rt.config) == before
    assert rt.region("a").policy.ttl == 60


async def test_a_refused_service_edit_leaves_the_live_config_unchanged(rt: Runtime) -> None:
    before = config_data(rt.config)

    def refuse(_before: object, config: CacheConfig) -> None:
        assert config.providers["extra"].type == "memory"  # the guard sees the edit made
        raise PermissionError("not here")

    result = await CacheProviderService(rt, guard=refuse).register_provider("extra", "memory")
    assert result.is_failure() and "not here" in (result.error or "")
    assert config_data(rt.config) == before
