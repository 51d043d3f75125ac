"""Edits of the live config made by the services: one :meth:`Runtime.edit` transaction each, checked
by an optional :data:`EditGuard` before it is applied."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .result import T

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


def edit_config(rt: Runtime, mutate: Callable[[CacheConfig], T], guard: EditGuard | None = None) -> T:
    """Apply ``mutate`` to the live config and hot-apply it in one :meth:`Runtime.edit`; on any
    error (in ``mutate``, the guard or validation) the live config is left as it was."""
    with rt.edit() as config:
        before = {name: copy.deepcopy(getattr(config, name)) for name in SECTIONS} if guard else {}
        out = mutate(config)
        if guard is not None:
            guard(before, config)
    return out
