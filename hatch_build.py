"""Build step: compile the translation catalogs (docs/translating.md).

For each ``src/webinar/i18n/locale/<lang>/LC_MESSAGES/messages.po`` it writes ``messages.mo``
(for gettext) and ``client.json`` (the browser's catalog) beside it, in wheels and editable
installs alike, so compiled catalogs are never committed and never drift from the ``.po``.
The compile code is the package's own (``webinar.i18n.compile_language``), loaded from the
source tree; it needs only Babel, which the build requires.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CatalogBuildHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        package = root / "src" / "webinar" / "i18n" / "__init__.py"
        spec = importlib.util.spec_from_file_location("_webinar_i18n_build", package)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot load {package}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
            for po in sorted((root / "src" / "webinar" / "i18n" / "locale").glob("*/LC_MESSAGES/*.po")):
                language = po.parent.parent.name
                mo, client = module.compile_language(po, language)
                for path in (mo, client):
                    build_data["artifacts"].append(str(path.relative_to(root)))
        finally:
            sys.modules.pop(spec.name, None)
