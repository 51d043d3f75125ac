"""Live configuration of a runtime, mixed into :class:`~cachekit.runtime.runtime.Runtime`.

The live config is edited in one transaction (:meth:`edit`): the block changes the config in place,
and on exit the whole edit is validated and hot-applied (:meth:`apply`), or every section is
restored and the error re-raised. ``apply`` re-binds every region to its new policy; the compiler
decides which tiers (and so which data) survive (``Compiler.build``). ``update_region`` is the
one-region edit behind ``region.set_ttl``; ``save`` writes the live config back to its TOML file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config.models import CacheConfig
    from .region import Region
    from .runtime import Runtime

    _Base = Runtime
else:
    _Base = object

__all__ = ["LiveConfigMixin"]


class LiveConfigMixin(_Base):
    """Edits, hot-apply and save of :class:`~cachekit.runtime.runtime.Runtime`'s config (mixed into it)."""

    def update_region(self, name: str, **changes: Any) -> Region:
        """Change fields of region ``name`` in the live config and apply them at once."""
        with self.edit() as config:
            rc = config.regions.get(name)
            if rc is None:
                rc = self.compiler.region_config(name).model_copy()
                config.regions[name] = rc
            for field_name, value in changes.items():
                setattr(rc, field_name, value)
        return self.region(name)

    def edit(self) -> contextlib.AbstractContextManager[CacheConfig]:
        """One transaction on the live config: ``with runtime.edit() as config: config.regions[...] = ...``.

        The block changes ``config`` (the live :class:`~cachekit.config.CacheConfig` itself, so
        references to it stay valid); on exit the whole edit is validated and hot-applied at once. An
        exception in the block, or a config that does not validate (``ConfigError``), restores every
        section as it was and re-raises: the live config and the regions are left unchanged. Edits
        serialize on the runtime's lock (an ``RLock``: an edit may call ``update_region`` or nest).
        """
        import copy

        @contextlib.contextmanager
        def transaction() -> Iterator[CacheConfig]:
            with self._lock:
                config = self.config
                saved = {name: copy.deepcopy(getattr(config, name)) for name in type(config).model_fields}
                applying = False
                try:
                    yield config
                    applying = True
                    self.apply()
                except BaseException:
                    changed = False
                    for name, value in saved.items():
                        current = getattr(config, name)
                        if current == value:
                            continue
                        changed = True
                        if isinstance(current, dict):  # in place: a caller may hold the section itself
                            current.clear()
                            current.update(value)
                        elif isinstance(current, list):
                            current[:] = value
                        else:
                            setattr(config, name, value)
                    if changed or applying:
                        try:
                            self.apply()
                        except Exception:  # the restored config was live a moment ago; keep the first error
                            pass
                    raise

        return transaction()

    def apply(self) -> None:
        """Re-validate the live config and re-bind every region to it (data kept where the
        provider did not change)."""
        from ..config.checks import validate_config
        from ..errors import ConfigError

        problems = [p for p in validate_config(self.config) if not self.compiler.names_registered_store(p)]
        if problems:
            raise ConfigError(problems, file=getattr(self.config, "source_path", None))
        with self._lock:
            rebuilt = self.compiler.drop_changed_drivers(self._all_regions())
            self.default_repository = None
            for name in list(self._adhoc):
                if name in self.config.regions or name == self.config.cache.default_region:
                    # declared (or made the default) since: never dropped now
                    self._regions[name] = self._adhoc.pop(name)
            # a tier (and its data) survives when its provider, its serializer and the provider's
            # config are unchanged (``rebuilt`` names the changed providers; ``Compiler.build``)
            for name, region in [*self._regions.items(), *self._adhoc.items(), *self._evicted.items()]:
                self._build(name, self.compiler.policy(name), existing=region, rebuilt=rebuilt)
            default = self.config.cache.default_region
            for store, region in list(self._stores.items()):
                self._build(region.stats.region, self.compiler.policy(default, store), existing=region,
                            rebuilt=rebuilt)

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the live config back to its TOML file (comments and formatting kept)."""
        from ..config.save import save_config

        return Path(save_config(self.config, path))
