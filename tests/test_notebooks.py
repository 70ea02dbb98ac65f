"""Every notebook in ``examples/`` runs top to bottom (nbclient) on a small synthetic Alaska.

The store is written by ``geocryo synth`` into a temporary data directory that the kernels find
through ``GEOCRYO_DATA``, exactly as a user's catalog would: 32 x 32 cells over 2000-2009, so
that each notebook runs in a minute or two. The kernels share a JAX compilation cache in a
temporary directory, so that a network compiled by one notebook is not compiled again by the
next (the notebooks fit the same small network more than once).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from geocryo.cli import main

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))


def outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def figures(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for out in outputs(nb))


def text_of(nb: nbformat.NotebookNode, source_start: str) -> str:
    """The plain-text result of the code cell whose source starts with ``source_start``."""
    cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(source_start))
    return "".join(out["data"]["text/plain"] for out in cell.outputs if "data" in out)


#: What each notebook must show besides running without an error.
CHECKS = {
    "01_quick_start": lambda nb: figures(nb) >= 5,
    "02_multimodal_vs_teacher_forcing": lambda nb: figures(nb) >= 5,
    "03_tuning": lambda nb: "4 trials, 0 failed" in text_of(nb, "space = "),
    # two forced host devices took part in training
    "04_scaling_out": lambda nb: text_of(nb, "model = geocryo.fit") == "2",
    # the CALM table read back lands exactly on the cube's values
    "05_real_data": lambda nb: text_of(nb, "float(abs(calm.alt - cube.alt).max())") == "0.0",
}


def test_there_are_five_notebooks_each_checked() -> None:
    assert [path.stem for path in NOTEBOOKS] == sorted(CHECKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebooks_are_stored_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"  # the kernel ipykernel installs
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name}: clear the outputs before committing"
            )
    # no paths of one machine
    assert "/home/" not in json.dumps(nb) and "/work/" not in json.dumps(nb)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A data directory holding ``synthetic/alaska.zarr`` and its truth, as `geocryo synth`
    writes them."""
    root = tmp_path_factory.mktemp("geocryo-data")
    store = root / "synthetic" / "alaska.zarr"
    argv = ["synth", "--out", str(store), "--ny", "32", "--nx", "32", "--end", "2009-12"]
    assert main([*argv, "--quiet"]) == 0
    return root


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("jax-cache")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs(
    path: Path, data_dir: Path, jax_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEOCRYO_DATA", str(data_dir))
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(jax_cache))
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    assert not [out for out in outputs(nb) if out["output_type"] == "error"]
    assert CHECKS[path.stem](nb), f"{path.name} ran but did not show what it should"
