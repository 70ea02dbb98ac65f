"""The package's shape: a light import, thin __init__ files, no name used twice, aliases of
moved modules. (That no floor imports a higher one is checked against docs/architecture.md in
test_docs.py.)"""

import ast
import subprocess
import sys
import types
from pathlib import Path

import pytest

import geocryo

PACKAGE = Path(geocryo.__file__).parent


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*/__init__.py")), ids=lambda p: p.parent.name)
def test_a_package_init_only_names_its_public_api(path):
    tree = ast.parse(path.read_text())
    body = tree.body[1:] if ast.get_docstring(tree) else tree.body
    for node in body:
        ok = isinstance(node, ast.ImportFrom) or (
            isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["__all__"]
        )
        assert ok, f"{path}: line {node.lineno} is neither an import nor __all__"
    aliases = [a for n in body if isinstance(n, ast.ImportFrom) for a in n.names]
    # every name re-exported explicitly ("x as x"), and __all__, where there is one, lists them
    assert all(a.asname == a.name for a in aliases), [a.name for a in aliases if a.asname is None]
    declared = [n.value for n in body if isinstance(n, ast.Assign)]
    if declared:
        assert {elt.value for elt in declared[0].elts} == {a.name for a in aliases}


def test_import_geocryo_is_light():
    # (how long it takes is measured by benchmarks/bench_import.py)
    code = (
        "import sys; import geocryo; "
        "print(sorted(m for m in ('jax', 'flax', 'optax', 'xskillscore', 'intake', 'zarr', "
        "'dask', 'matplotlib', 'sklearn', 'dask_ml') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"import geocryo loaded {out.stdout}"
    # the accessor registers on import
    check = "import xarray as xr, geocryo; xr.Dataset().geocryo"
    subprocess.run([sys.executable, "-c", check], check=True)


def test_public_names_load_on_first_use():
    for name in geocryo.__all__:
        assert getattr(geocryo, name) is not None
    assert geocryo.fit is geocryo.forecast.fit and geocryo.evaluate is geocryo.evaluation.evaluate
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = geocryo.nothing


def test_no_public_function_shares_its_name_with_a_module():
    modules = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.name != "__pycache__"}
    for name in geocryo.__all__:
        value = getattr(geocryo, name)
        if not isinstance(value, types.ModuleType):
            assert name not in modules, f"geocryo.{name} is a {type(value).__name__} and a module"


#: Moved modules and where they went; each old path is a deprecated alias for one release.
MOVED = {
    "geocryo.forecaster": "geocryo.forecast",
    "geocryo.catalog": "geocryo.io.catalog",
    "geocryo.metrics": "geocryo.evaluation.metrics",
    "geocryo.baselines": "geocryo.evaluation.baselines",
}


def test_moved_modules_keep_a_deprecated_alias():
    # one fresh interpreter, each old path imported there for the first time
    code = (
        "import warnings, importlib\n"
        f"for old, new in {MOVED!r}.items():\n"
        "    with warnings.catch_warnings(record=True) as caught:\n"
        "        warnings.simplefilter('always')\n"
        "        module = importlib.import_module(old)\n"
        "    assert module is importlib.import_module(new), (old, module)\n"
        "    said = [str(w.message) for w in caught\n"
        "            if issubclass(w.category, DeprecationWarning)]\n"
        "    assert any(new in text for text in said), (old, said)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
