"""Build step: compile the translation catalogs (docs/translating.md) and the native fan-out.

For each ``src/webinar/i18n/locale/<lang>/LC_MESSAGES/messages.po`` it writes ``messages.mo``
(for gettext) and ``client.json`` (the browser's catalog) beside it, in wheels and editable
installs alike, so compiled catalogs are never committed and never drift from the ``.po``.
The compile code is the package's own (``webinar.i18n.compile_language``), loaded from the
source tree; it needs only Babel, which the build requires.

The SFU's native fan-out (``src/webinar/sfu/_fanout.c``) is compiled with the system C
compiler into ``src/webinar/sfu/_fanout<EXT_SUFFIX>`` (``webinar.sfu.build.build``, also loaded
from the source tree: it needs only the standard library); the wheel then carries it and is
tagged for this platform. Without a compiler (or Python's headers) the build warns and goes
on: the SFU then forwards in pure Python.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


@contextmanager
def _source_module(path: Path, name: str) -> Iterator[Any]:
    """``path`` loaded as a module from the source tree (the package is not installed yet)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


class CatalogBuildHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        i18n = root / "src" / "webinar" / "i18n"
        with _source_module(i18n / "__init__.py", "_webinar_i18n_build") as module:
            for po in sorted((i18n / "locale").glob("*/LC_MESSAGES/*.po")):
                language = po.parent.parent.name
                mo, client = module.compile_language(po, language)
                for path in (mo, client):
                    build_data["artifacts"].append(str(path.relative_to(root)))
        self._native(root, build_data, version)

    def _native(self, root: Path, build_data: dict[str, Any], version: str) -> None:
        sfu = root / "src" / "webinar" / "sfu"
        with _source_module(sfu / "build.py", "_webinar_native_build") as module:
            try:
                out = module.build(sfu / "_fanout.c")
            except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
                detail = getattr(exc, "stderr", "") or ""
                message = (
                    f"webinar: the native fan-out was not compiled ({exc}); the SFU will "
                    f"forward in pure Python (slower). {detail}"
                )
                warnings.warn(message, stacklevel=1)
                self.app.display_warning(message)
                return
        build_data["artifacts"].append(str(out.relative_to(root)))
        if self.target_name == "wheel" and version != "editable":
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
