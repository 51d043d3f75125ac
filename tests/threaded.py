"""Threads made to interleave inside a store's methods (the memory store's thread tests): a tiny GIL
switch interval while a test runs (``switch_often``, an autouse fixture once imported), and
``run_threads``, which re-raises in the test's thread the first error of any thread."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import pytest


@pytest.fixture(autouse=True)
def switch_often() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def run_threads(*targets: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # re-raised in the test's thread
                errors.append(exc)
        return run

    threads = [threading.Thread(target=guarded(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
