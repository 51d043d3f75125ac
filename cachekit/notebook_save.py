"""The tuning panel's save bar: **save** writes the tuned config back to the file it came from
(``Runtime.save``: comments kept, new tables where they belong) or to the *save as…* path, and refuses to
overwrite a file changed since it was loaded: it shows the difference (a unified diff, as loaded → the
file now) and an **overwrite** button. A mixin of :class:`~cachekit.notebook.TuningPanel`
(``panel.save``, ``panel.save_as``, ``panel.overwrite``, ``panel.diff``)."""

from __future__ import annotations

import difflib
import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import CacheError, require
from .runtime.runtime import Runtime

widgets: Any = require("ipywidgets", "notebook")

__all__ = ["SaveSection"]


class SaveSection:
    """The save bar (a mixin: the panel provides ``runtime`` and ``say``)."""

    runtime: Runtime
    say: Callable[..., None]

    def _build_save(self) -> None:
        self.save = widgets.Button(description="save", button_style="primary", icon="save",
                                   tooltip="write the tuned values back to the TOML file")
        self.save_as = widgets.Text(placeholder="save as… (a path; empty: the file it came from)",
                                    layout=widgets.Layout(width="360px"))
        self.overwrite = widgets.Button(description="overwrite", button_style="danger", icon="exclamation",
                                        layout=widgets.Layout(display="none"))
        self.diff = widgets.HTML()
        self.save.add_class("cachekit-save")
        self.save.on_click(lambda _: self._save())
        self.overwrite.on_click(lambda _: self._save(force=True))
        self._save_box = widgets.VBox([widgets.HBox([self.save, self.save_as, self.overwrite]), self.diff])

    def _save(self, *, force: bool = False) -> Path | None:
        target = Path(self.save_as.value).expanduser() if self.save_as.value.strip() else None
        path = target or self.runtime.config.source_path
        document = self.runtime.config.document
        if not force and path is not None and path.exists():
            disk = path.read_text()
            loaded = document.as_string() if document is not None and path == self.runtime.config.source_path \
                else None
            if (loaded is None and target is not None) or (loaded is not None and
                                                           disk.rstrip("\n") != loaded.rstrip("\n")):
                diff = "".join(difflib.unified_diff((loaded or "").splitlines(True), disk.splitlines(True),
                                                    "as loaded" if loaded is not None else "(new file)",
                                                    f"{path} now"))
                self.diff.value = ("<div class='ck-diff'><b>Not saved:</b> the file changed since it was loaded. "
                                   "Overwrite to replace it with the tuned config, or save as another path."
                                   f"<pre>{html.escape(diff)}</pre></div>")
                self.overwrite.layout.display = None
                self.say(f"not saved: {path} changed since it was loaded", error=True)
                return None
        try:
            written = self.runtime.save(target)
        except (CacheError, ValueError, OSError) as exc:
            self.say(f"not saved: {exc}", error=True)
            return None
        self.diff.value = ""
        self.overwrite.layout.display = "none"
        self.say(f"saved to {written}")
        return written
