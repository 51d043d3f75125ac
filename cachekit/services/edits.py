"""Edits of the live config made by the services: one :meth:`Runtime.edit` transaction each, checked
by an optional :data:`EditGuard` before it is applied."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config.models import CacheConfig
    from ..runtime.runtime import Runtime

__all__ = ["SECTIONS", "EditGuard", "edit_config"]

#: The sections of a config, in the order a configuration document lists them.
SECTIONS = ("cache", "providers", "regions", "rules", "bus", "http")

#: ``guard(before, config)``: called after an edit, before it is applied; raising refuses the edit.
#: ``before`` maps each section name to its value before the edit. The HTTP admin routes pass one
#: (``cachekit.http_policy``); Python callers of the services pass none and are not restricted.
EditGuard = Callable[[Mapping[str, Any], "CacheConfig"], None]


@contextlib.contextmanager
def edit_config(rt: Runtime, guard: EditGuard | None = None) -> Iterator[CacheConfig]:
    """``with edit_config(rt, guard) as config:`` read and change the live config in one
    :meth:`Runtime.edit` transaction; ``guard`` checks the result before it is applied. On any error
    (in the block, the guard or validation) the live config is left as it was."""
    with rt.edit() as config:
        before = {name: copy.deepcopy(getattr(config, name)) for name in SECTIONS} if guard else {}
        yield config
        if guard is not None:
            guard(before, config)
