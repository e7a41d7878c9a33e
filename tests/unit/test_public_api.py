"""The names a user imports: ``vecdb.__all__`` lists exactly the public names, and they exist."""

from __future__ import annotations

import importlib.metadata
import types
from pathlib import Path

import pytest

import vecdb
import vecdb.engine
from vecdb.engine import errors


def public_names(module: types.ModuleType) -> set[str]:
    """Return the module's public attributes that are not submodules."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


@pytest.mark.parametrize("module", [vecdb, vecdb.engine], ids=lambda m: m.__name__)
def test_every_name_in_all_exists(module: types.ModuleType) -> None:
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing
    assert len(module.__all__) == len(set(module.__all__)), "duplicate names in __all__"


@pytest.mark.parametrize("module", [vecdb, vecdb.engine], ids=lambda m: m.__name__)
def test_every_public_name_is_in_all(module: types.ModuleType) -> None:
    left_out = public_names(module) - set(module.__all__)
    assert not left_out, f"public names missing from {module.__name__}.__all__: {sorted(left_out)}"


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from vecdb import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(vecdb.__all__)


def test_every_engine_exception_is_exported() -> None:
    exceptions = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.VecdbError)
    }
    assert exceptions <= set(vecdb.__all__)
    for name in exceptions:
        assert getattr(vecdb, name) is getattr(errors, name)


def test_the_client_is_exported() -> None:
    assert "Client" in vecdb.__all__
    assert isinstance(vecdb.Client, type)


def test_version_matches_the_installed_distribution() -> None:
    assert vecdb.__version__ == importlib.metadata.version("vecdb")


def test_package_is_typed() -> None:
    assert vecdb.__file__ is not None
    assert (Path(vecdb.__file__).parent / "py.typed").is_file()
