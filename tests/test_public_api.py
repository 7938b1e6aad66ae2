"""The public API is what we mean it to be: sorted, complete, nothing private leaked."""

import importlib
import pkgutil

import pytest

import lakebox

PACKAGES = ["lakebox"] + [
    f"lakebox.{m.name}"
    for m in pkgutil.iter_modules(lakebox.__path__)
    if not m.name.startswith("_") and m.ispkg
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_resolves(name):
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert list(exported) == sorted(exported), f"{name}.__all__ is not sorted"
    for attr in exported:
        assert hasattr(module, attr), f"{name}.__all__ names missing {attr!r}"
        assert not attr.startswith("_") or attr == "__version__", f"{name} exports {attr!r}"


def test_top_level_names():
    assert {"Workspace", "errors", "__version__"} <= set(lakebox.__all__)
    assert lakebox.__version__.count(".") == 2


def test_importing_lakebox_has_no_side_effects(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    subprocess.run(
        [sys.executable, "-c", "import lakebox, lakebox.catalog, lakebox.server"], check=True
    )
    assert list(tmp_path.iterdir()) == []
