"""The documentation builds with Sphinx, warnings as errors, and holds what it promises."""

from __future__ import annotations

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
    pages = {"index", "installation", "cube", "science", "scaling", "examples", "api"}
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
        "geocryo.io.write_zarr",
        "geocryo.catalog.open_cube",
        "geocryo.synthetic.alaska",
        "geocryo.forecaster.fit",
        "geocryo.forecaster.Forecaster.predict",
        "geocryo.preprocess.Preprocessor",
        "geocryo.evaluate.evaluate",
        "geocryo.tune.tune",
        "geocryo.bayesopt.Optimizer",
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
