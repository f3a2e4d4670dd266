"""Every exception the services' package defines derives from EcosystemError, and keeps the stdlib base callers
catch."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import ecosystem
from ecosystem.config_store import ConfigNotFoundError, ConfigValidationError
from ecosystem.errors import EcosystemError
from ecosystem.security import SecurityError

# Found by walking the package, so an exception class added later is checked too.
DEFINED = {
    cls
    for module_info in pkgutil.walk_packages(ecosystem.__path__, "ecosystem.")
    if not module_info.name.startswith("ecosystem.api") and module_info.name != "ecosystem.__main__"
    for _, cls in inspect.getmembers(importlib.import_module(module_info.name), inspect.isclass)
    if issubclass(cls, BaseException) and cls.__module__ == module_info.name
}


def test_every_exception_of_the_package_is_an_ecosystem_error() -> None:
    assert len(DEFINED) >= 10, f"the walk found only {sorted(c.__name__ for c in DEFINED)}"
    outside = sorted(f"{cls.__module__}.{cls.__name__}" for cls in DEFINED if not issubclass(cls, EcosystemError))

    assert outside == [], "exceptions not derived from ecosystem.errors.EcosystemError"


def test_errors_callers_catch_by_a_stdlib_base_keep_it() -> None:
    assert issubclass(ConfigValidationError, ValueError)
    assert issubclass(ConfigNotFoundError, KeyError)
    assert issubclass(SecurityError, ValueError)


def test_an_error_keeps_its_own_message_and_attributes() -> None:
    error = ConfigNotFoundError("risk.foo", "development")

    assert str(error) == "Configuration not found: risk.foo (environment development)"
    assert (error.key, error.environment) == ("risk.foo", "development")
