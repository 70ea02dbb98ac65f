"""The documentation builds with Sphinx, warnings as errors, and holds what it promises."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def sphinx(source: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", source, out],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "html"
    result = sphinx(DOCS, out)
    assert result.returncode == 0, result.stderr[-4000:]
    return out


@pytest.mark.slow
def test_every_page_is_built(html: Path) -> None:
    pages = {
        "index",
        "installation",
        "cube",
        "science",
        "scaling",
        "architecture",
        "examples",
        "api",
    }
    assert pages <= {p.stem for p in html.glob("*.html")}
    notebooks = {p.stem for p in (ROOT / "examples").glob("*.ipynb")}
    assert notebooks and notebooks == {p.stem for p in (html / "examples").glob("*.html")}


@pytest.mark.slow
def test_the_notebooks_are_rendered_not_executed(html: Path) -> None:
    page = (html / "examples" / "01_quick_start.html").read_text()
    assert "cat = geocryo.open_catalog()" in re.sub(r"<[^>]+>", "", page)  # the code, highlighted
    assert "<img" not in page  # stored without outputs and not executed by the build


@pytest.mark.slow
def test_the_api_reference_comes_from_the_docstrings(html: Path) -> None:
    page = (html / "api.html").read_text()
    for name in (
        "geocryo.cube.validate",
        "geocryo.grid.locate",
        "geocryo.io.write_zarr",
        "geocryo.io.open_cube",
        "geocryo.io.catalog.CubeSource",
        "geocryo.io.atomic.atomic_write",
        "geocryo.readers.read_calm",
        "geocryo.synthetic.alaska",
        "geocryo.synthetic.physics.stefan_depth",
        "geocryo.preprocess.Preprocessor",
        "geocryo.batching.PatchStream",
        "geocryo.batching.augment.HistoryDropout",
        "geocryo.models.network.GeoCryoNet",
        "geocryo.train.Trainer",
        "geocryo.train.linear.fit_skip",
        "geocryo.forecast.fit",
        "geocryo.forecast.FitConfig.with_train",
        "geocryo.forecast.Forecaster.predict",
        "geocryo.forecast.prediction.predict_members",
        "geocryo.forecast.summarize",
        "geocryo.tuning.tune",
        "geocryo.bayesopt.Optimizer",
        "geocryo.evaluation.evaluate",
        "geocryo.evaluation.to_markdown",
        "geocryo.evaluation.baselines.persistence",
        "geocryo.evaluation.metrics.crps",
        "geocryo.evaluation.metrics.ensemble_interval",
        "geocryo.plots.field_maps",
        "geocryo.report.write_report",
        "geocryo.accessor.GeocryoAccessor.fit",
    ):
        assert f'id="{name}"' in page, name
    # numpydoc sections become field lists, not raw text
    assert '<dt class="field-odd">Parameters<' in page and "----------" not in page


@pytest.mark.slow
def test_the_science_page_gives_the_formulas(html: Path) -> None:
    page = (html / "science.html").read_text()
    # Stefan's thaw depth with the latent heat of fusion, and the CH4 Q10 response
    assert re.search(r"L\s*=\s*3\.34", page)
    assert "Q_{10}^{(T_s - 10)/10}" in page
    assert "Nelson" in page and "Zona" in page


def test_a_warning_fails_the_build(tmp_path: Path) -> None:
    # the same configuration on a page with a broken cross-document link
    source = tmp_path / "docs"
    source.mkdir()
    shutil.copy(DOCS / "conf.py", source / "conf.py")
    (source / "index.md").write_text("# Broken\n\nSee [the missing page](missing.md).\n")
    result = sphinx(source, tmp_path / "html")
    assert result.returncode != 0
    assert "missing" in result.stderr


# ---------------------------------------------------------------------------------------------
# The architecture page matches the tree (fast: reads files, imports nothing of geocryo)

ARCHITECTURE = DOCS / "architecture.md"
PACKAGE = ROOT / "geocryo"
#: `geocryo/...` paths, and dotted `geocryo.x.y` names (not `ds.geocryo.x`, not `x/geocryo.y`).
PATH = re.compile(r"(?<![\w./-])geocryo/[\w./-]*")
DOTTED = re.compile(r"(?<![\w./-])geocryo(?:\.\w+)+")


def _defined(tree: ast.Module) -> dict[str, ast.AST]:
    """Top-level names of a module: definitions, assignments, imports, and ``__all__``."""
    names: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    names[target.id] = node
                    if target.id == "__all__" and isinstance(node.value, ast.List | ast.Tuple):
                        for entry in node.value.elts:  # names loaded lazily
                            names.setdefault(entry.value, node)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            for alias in node.names:
                names[(alias.asname or alias.name).split(".")[0]] = node
    return names


def _module_file(parts: list[str]) -> tuple[Path | None, list[str]]:
    """The file of the longest module prefix of ``parts`` (``geocryo``, ...), and the rest."""
    path, found, rest = ROOT, None, parts
    for i, part in enumerate(parts):
        if (path / part / "__init__.py").is_file():
            path = path / part
            found, rest = path / "__init__.py", parts[i + 1 :]
        elif (path / f"{part}.py").is_file():
            return path / f"{part}.py", parts[i + 1 :]
        else:
            break
    return found, rest


def _resolves(name: str) -> bool:
    """``geocryo.x.y[.attr...]``: a module of the tree, then names it defines or imports."""
    file, rest = _module_file(name.split("."))
    for _ in range(10):  # follow re-exports through a few packages at most
        if file is None or not rest:
            return file is not None
        node = _defined(ast.parse(file.read_text())).get(rest[0])
        if isinstance(node, ast.ImportFrom) and node.level:
            # a re-export (``from .config import FitConfig``): look where it comes from
            package = file.parent.relative_to(ROOT).parts
            base = [*package[: len(package) - node.level + 1], *(node.module or "").split(".")]
            (alias,) = [a for a in node.names if (a.asname or a.name) == rest[0]]
            file, rest = _module_file([p for p in base if p] + [alias.name, *rest[1:]])
        elif isinstance(node, ast.ClassDef) and len(rest) > 1:
            members = {getattr(n, "name", None) for n in node.body} | {
                n.target.id
                for n in node.body
                if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
            }
            return len(rest) == 2 and rest[1] in members
        else:
            # a plain ``import x`` cannot be followed: its name is enough
            return isinstance(node, ast.Import) or (node is not None and len(rest) == 1)
    return False


def test_every_path_named_on_the_architecture_page_exists() -> None:
    text = ARCHITECTURE.read_text()
    paths = {p.rstrip(".") for p in PATH.findall(text)}
    assert len(paths) > 20, paths
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"docs/architecture.md names paths that are not in the tree: {missing}"


def test_every_module_named_on_the_architecture_page_exists() -> None:
    names = set(DOTTED.findall(ARCHITECTURE.read_text()))
    assert len(names) > 40, names
    missing = sorted(n for n in names if not _resolves(n))
    assert not missing, f"docs/architecture.md names what the tree does not have: {missing}"


def test_the_architecture_page_mentions_every_package() -> None:
    text = ARCHITECTURE.read_text()
    packages = sorted(
        p.parent.relative_to(ROOT) for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE
    )
    assert packages
    unnamed = [
        str(p)
        for p in packages
        if f"{p.as_posix()}/" not in text and ".".join(p.parts) not in DOTTED.findall(text)
    ]
    assert not unnamed, f"docs/architecture.md does not mention the packages {unnamed}"


def _floors() -> dict[Path, int]:
    """Paths of the floors table of the architecture page: ``| 3 | `geocryo/x/` | ... |``."""
    floors = {}
    for line in ARCHITECTURE.read_text().splitlines():
        row = re.match(r"\|\s*(\d+)\s*\|([^|]*)\|", line)
        if row:
            for path in PATH.findall(row.group(2)):
                floors[ROOT / path.rstrip("/")] = int(row.group(1))
    return floors


def _floor(file: Path, floors: dict[Path, int]) -> int | None:
    for path in (file, *file.parents):
        if path in floors:
            return floors[path]
    return None


def _imports(file: Path) -> set[tuple[Path, str]]:
    """What ``file`` imports of geocryo (at the top, in functions or for type checks): the
    files, each with the name taken from it when that is no module (``__version__``)."""
    package = file.parent.relative_to(ROOT).parts
    found = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.Import):
            modules = [a.name.split(".") for a in node.names if a.name.split(".")[0] == "geocryo"]
        elif isinstance(node, ast.ImportFrom) and (node.level or node.module == "geocryo"):
            base = [*package[: len(package) - node.level + 1]] if node.level else []
            base += (node.module or "").split(".") if node.module else []
            modules = [[p for p in base if p] + [a.name] for a in node.names]
        else:
            continue
        for parts in modules:
            target, rest = _module_file(parts)
            if target is not None:
                found.add((target, ".".join(rest)))
    return found


def test_a_floor_never_imports_a_higher_one() -> None:
    floors = _floors()
    assert len(set(floors.values())) == 11, floors
    helpers = {p for p in PACKAGE.glob("_*.py") if p.name != "__init__.py"}
    wrong = []
    for file in sorted(PACKAGE.rglob("*.py")):
        if file == PACKAGE / "__init__.py":
            continue  # the front door: loads every floor lazily
        own = _floor(file, floors)
        for target, name in _imports(file):
            if target == file or target in helpers:
                continue  # the private helpers import nothing of geocryo
            if file in helpers or own is None:
                wrong.append(f"{file.relative_to(ROOT)} (no floor) imports {target.name}")
                continue
            if target == PACKAGE / "__init__.py" and name == "__version__":
                continue
            theirs = _floor(target, floors)
            if theirs is None or theirs > own:
                wrong.append(
                    f"{file.relative_to(ROOT)} (floor {own}) imports "
                    f"{target.relative_to(ROOT)} (floor {theirs})"
                )
    assert not wrong, "\n".join(wrong)
