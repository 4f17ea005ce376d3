"""Modules Connexion imports for features this server never uses, loaded at their first use."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

# Connexion 3.3 imports each of these when it is imported, for a feature this server does not
# use: fetching remote `$ref`s (connexion.json_schema), rendering a spec file as a Jinja2
# template (connexion.spec) and Connexion's own Swagger UI (starlette.templating, which
# imports jinja2), calling an OAuth token-info URL (connexion.security), and
# AbstractApp.test_client() (starlette.testclient, which imports httpx, whose command-line
# entry point imports rich, click and pygments where they are installed). Together ~11 MB of
# every worker's memory (91.6 -> 80.4 MB after create_app in the development venv, measured
# 2026-11-30); each is still there, imported at the first use of one of its attributes.
# Each name maps to the names Connexion binds from it by a from-import when it is imported:
# those stand in too, as callables that import the module when called.
DEFERRED: dict[str, tuple[str, ...]] = {
    "requests": (),
    "jinja2": (),
    "httpx": (),
    "starlette.testclient": ("TestClient",),
    "starlette.templating": ("Jinja2Templates",),
}


class DeferredModule(types.ModuleType):
    """Stands in sys.modules for a module not imported yet, with the real module's spec (so
    the import system takes it as loaded), and imports the real module at the first access
    to anything else; names bound to the stand-in keep working through it."""

    def __getattr__(self, name: str) -> Any:
        spec = self.__spec__
        if name == "__path__" and (spec is None or spec.submodule_search_locations is None):
            # `from module import name` asks whether the module is a package: a plain module
            # is not, and saying so needs no import.
            raise AttributeError(name)
        return getattr(self.load(), name)

    def load(self) -> types.ModuleType:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return importlib.import_module(self.__name__)


def _imported(name: str) -> types.ModuleType:
    module = sys.modules.get(name)
    if isinstance(module, DeferredModule):
        return module.load()
    return module if module is not None else importlib.import_module(name)


def _bound_later(module_name: str, attribute: str) -> Any:
    """A callable standing for a class bound by a from-import: it imports the module and
    calls the class (Connexion only ever calls these)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(_imported(module_name), attribute)(*args, **kwargs)

    call.__name__ = call.__qualname__ = attribute
    return call


def defer_unused_imports(
    modules: dict[str, tuple[str, ...]] = DEFERRED,
) -> list[str]:
    """Puts a stand-in in sys.modules for each module named not imported yet (for DEFERRED,
    only before Connexion is imported does this change anything); returns their names."""
    deferred = []
    for name, bound in modules.items():
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue  # not installed: whatever imports it fails as it would have
        module = DeferredModule(name)
        module.__spec__ = spec
        for attribute in bound:
            setattr(module, attribute, _bound_later(name, attribute))
        sys.modules[name] = module
        deferred.append(name)
    return deferred


defer_unused_imports()
