"""Zarr v3 stores: exact round trips, the stored layout, lazy opening, and atomic replacement."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from geocryo.cube import CubeError
from geocryo.grid import grid
from geocryo.io import default_chunks, open_zarr, write_stores, write_zarr


@pytest.fixture(scope="module")
def cube(small_cube) -> xr.Dataset:
    """The small synthetic cube, in memory (its world is computed once per module)."""
    return small_cube[0].compute()


@pytest.fixture(scope="module")
def store(small_cube, tmp_path_factory) -> Path:
    """The lazy small cube written once, with a progress bar: copy it before changing it."""
    return write_zarr(small_cube[0], tmp_path_factory.mktemp("stores") / "alaska.zarr")


# -- factories -------------------------------------------------------------------------------


class Chunk:
    """A ``map_blocks`` function that counts its calls and the chunks in flight, and can raise
    ``error`` in the chunk at ``fail_at`` while another chunk (taking ``delay`` seconds) runs."""

    def __init__(
        self,
        error: BaseException | None = None,
        fail_at: tuple[int, ...] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.error, self.fail_at, self.delay = error, fail_at, delay
        self.calls = 0
        self.running = 0
        self._lock = threading.Lock()

    def __call__(self, block: np.ndarray, block_info=None) -> np.ndarray:
        with self._lock:
            self.calls += 1
            self.running += 1
        try:
            if self.error is not None and block_info[0]["chunk-location"] == self.fail_at:
                deadline = time.monotonic() + 0.5
                while self.running < 2 and time.monotonic() < deadline:
                    time.sleep(0.001)  # fail while another chunk is being written
                raise self.error
            time.sleep(self.delay)
            return block + 1
        finally:
            with self._lock:
                self.running -= 1

    def apply(self, data: da.Array) -> da.Array:
        return da.map_blocks(self, data, meta=np.array((), dtype=data.dtype))


def thaw_cube(data: da.Array) -> xr.Dataset:
    """A one-variable cube of ``alt`` on a small grid, monthly from January 2000."""
    nt, ny, nx = data.shape
    months = pd.date_range("2000-01", periods=nt, freq="MS")
    attrs = {"units": "cm", "modality": "in_situ", "long_name": "thaw depth"}
    return (
        grid(ny, nx)
        .assign_coords(time=months.values.astype("datetime64[ns]"))
        .assign(alt=(("time", "y", "x"), data, attrs))
    )


def zeros(nt: int = 24, ny: int = 4, nx: int = 4) -> da.Array:
    return da.zeros((nt, ny, nx), chunks=(12, ny, nx), dtype="float32")


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` by relative name, with its bytes."""
    return {
        str(file.relative_to(path)): file.read_bytes()
        for file in sorted(path.rglob("*"))
        if file.is_file()
    }


def leftovers(directory: Path) -> list[str]:
    """Hidden staging or retired stores left in ``directory``."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


LAYOUT = {"time": 12, "y": 6, "x": 5}


def failing_cube(cube: xr.Dataset, chunk: Chunk) -> xr.Dataset:
    """``cube`` whose ``lst`` is computed by ``chunk``, chunk by chunk in the stored layout."""
    ds = cube.chunk(LAYOUT)
    ds["lst"] = ds["lst"].copy(data=chunk.apply(ds["lst"].data))
    return ds


# -- round trip and layout -------------------------------------------------------------------


def test_round_trip_is_exact(cube: xr.Dataset, backend, tmp_path: Path) -> None:
    ds = backend(cube)
    path = write_zarr(ds, tmp_path / "alaska.zarr", progress=backend.lazy)

    assert path == (tmp_path / "alaska.zarr").absolute()
    back = open_zarr(path)
    expected = ds.compute()
    # values with their NaNs, dtypes, attrs, every coordinate (lat/lon, 2-D zone, band) and
    # the hyperspectral cube on its own band dim
    xr.testing.assert_identical(back.compute(), expected)
    assert back["time"].dtype == np.dtype("datetime64[ns]")
    assert back["alt"].dtype == np.float32
    assert back["zone"].dims == ("y", "x")
    assert back["hyperspectral_reflectance"].dims == ("band", "y", "x")
    np.testing.assert_array_equal(back["band"].values, np.arange(cube.sizes["band"]))
    sites = np.isfinite(back["alt"].values)
    assert 0 < sites.sum() < sites.size  # sparse: the NaNs came back as NaNs
    np.testing.assert_array_equal(sites, np.isfinite(expected["alt"].values))
    assert leftovers(tmp_path) == []


def test_lazy_variables_are_stored_encoded_as_xarray_stores_them(tmp_path: Path) -> None:
    # chunks go to the store as xarray would encode them: times as numbers with units,
    # booleans and scaled integers through their CF encodings
    ds = thaw_cube(da.from_array(np.arange(24 * 16, dtype=np.float32).reshape(24, 4, 4), chunks=12))
    flown = pd.date_range("2000-01-03", periods=24, freq="MS").values
    ds = ds.assign(
        snow_free=(("time", "y", "x"), da.from_array(ds["alt"].values % 3 == 0, chunks=12)),
        thaw_index=ds["alt"] * 0.1,
    ).assign_coords(flown=("time", da.from_array(flown, chunks=5)))
    ds["thaw_index"].encoding = {"dtype": "int16", "scale_factor": 0.1, "_FillValue": -1}
    ds["thaw_index"].attrs = {"units": "1"}
    ds["snow_free"].attrs = {"units": "1"}

    path = write_zarr(ds, tmp_path / "ours.zarr", progress=False, validate_cube=False)
    ours = open_zarr(path, validate_cube=False)
    ds.to_zarr(tmp_path / "xarray.zarr", consolidated=False, zarr_format=3)
    theirs = xr.open_zarr(tmp_path / "xarray.zarr", consolidated=False)

    xr.testing.assert_identical(ours.compute(), theirs.compute())
    assert ours["flown"].dtype == np.dtype("datetime64[ns]")
    assert ours["snow_free"].dtype == bool
    np.testing.assert_allclose(ours["thaw_index"], ds["thaw_index"], atol=0.051)


def test_store_is_zarr_v3_in_the_default_chunks(cube: xr.Dataset, store: Path) -> None:
    path = store
    chunks = default_chunks(cube)

    group = json.loads((path / "zarr.json").read_text())
    assert (group["zarr_format"], group["node_type"]) == (3, "group")
    assert not (path / ".zgroup").exists() and not (path / ".zmetadata").exists()
    for name, var in cube.data_vars.items():
        meta = json.loads((path / name / "zarr.json").read_text())
        assert meta["zarr_format"] == 3
        shape = meta["chunk_grid"]["configuration"]["chunk_shape"]
        assert shape == [chunks[dim] for dim in var.dims], name
        assert meta["fill_value"] == "NaN"
    assert chunks == {"y": 12, "x": 10, "band": 64, "time": 36}
    # written straight from the lazy generator, with its progress bar
    xr.testing.assert_identical(open_zarr(path).compute(), cube)


def test_open_is_lazy_and_uses_the_stored_chunks(
    cube: xr.Dataset, tmp_path: Path, task_counter
) -> None:
    three = cube[["alt", "hyperspectral_reflectance", "elevation"]]
    path = write_zarr(three, tmp_path / "alaska.zarr", chunks=LAYOUT, progress=False)

    with task_counter:
        back = open_zarr(path)
    assert task_counter.count == 0
    for name, var in back.data_vars.items():
        assert isinstance(var.data, da.Array), name
    assert back["alt"].chunks == ((12, 12, 12), (6, 6), (5, 5))
    assert back["hyperspectral_reflectance"].chunks == ((64,), (6, 6), (5, 5))
    assert back["elevation"].chunks == ((6, 6), (5, 5))

    # a store opened from another layout is rewritten in the new one, not the old encoding's
    again = write_zarr(back, tmp_path / "again.zarr", progress=False)
    assert open_zarr(again)["alt"].chunks == ((36,), (12,), (10,))


def test_open_validates(cube: xr.Dataset, tmp_path: Path) -> None:
    broken = cube.copy()
    del broken["lst"].attrs["modality"]
    with pytest.raises(CubeError, match="'lst'"):
        write_zarr(broken, tmp_path / "broken.zarr", progress=False)
    assert not (tmp_path / "broken.zarr").exists()

    path = write_zarr(broken, tmp_path / "broken.zarr", progress=False, validate_cube=False)
    with pytest.raises(CubeError, match=r"'lst'.*modality"):
        open_zarr(path)
    assert "modality" not in open_zarr(path, validate_cube=False)["lst"].attrs


def test_open_a_missing_store_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no store at .*nowhere\.zarr.*geocryo synth"):
        open_zarr(tmp_path / "nowhere.zarr")


def test_default_chunks_are_tiles_of_whole_years() -> None:
    # the real cube's size: 1300 x 1300 pixels, 60 years, a 425-band sensor
    lazy = xr.Dataset(
        {
            "lst": (("time", "y", "x"), da.zeros((720, 1300, 1300), dtype="float32")),
            "reflectance": (("band", "y", "x"), da.zeros((425, 1300, 1300), dtype="float32")),
        }
    )
    chunks = default_chunks(lazy)

    assert chunks == {"y": 128, "x": 128, "band": 425, "time": 120}
    assert chunks["time"] * 128 * 128 * 4 <= 8 * 2**20  # about 8 MiB of float32 per chunk
    short = default_chunks(lazy.isel(time=slice(0, 30), y=slice(0, 50)))
    assert short == {"y": 50, "x": 128, "band": 425, "time": 30}


# -- refusing to replace ---------------------------------------------------------------------


def test_existing_store_needs_overwrite(cube: xr.Dataset, store: Path, tmp_path: Path) -> None:
    path = Path(shutil.copytree(store, tmp_path / "alaska.zarr"))
    before = snapshot(path)
    newer = cube.isel(time=slice(12, 36))

    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_zarr(newer, path, progress=False)
    assert snapshot(path) == before

    write_zarr(newer, path, overwrite=True, progress=False)
    back = open_zarr(path)
    assert back.sizes["time"] == 24
    assert str(back["time"].values[0])[:7] == "2001-01"
    xr.testing.assert_identical(back.compute(), newer.compute())
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["directory", "file"])
def test_a_path_that_is_not_a_store_is_never_replaced(
    cube: xr.Dataset, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "results.zarr"
    if kind == "directory":
        path.mkdir()
        (path / "notes.txt").write_text("field notes, 2019")
    else:
        path.write_text("field notes, 2019")

    with pytest.raises(FileExistsError, match="already exists"):
        write_zarr(cube, path, progress=False)
    with pytest.raises(FileExistsError, match="not a Zarr store; refusing to replace it"):
        write_zarr(cube, path, overwrite=True, progress=False)

    text = (path / "notes.txt") if kind == "directory" else path
    assert text.read_text() == "field notes, 2019"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("url", ["s3://bucket/alaska.zarr", "gs://bucket/alaska.zarr"])
def test_a_url_is_refused(cube: xr.Dataset, url: str) -> None:
    with pytest.raises(ValueError, match=r"local stores atomically.*URL.*local path"):
        write_zarr(cube, url, progress=False)


def test_two_datasets_to_one_store_are_refused(cube: xr.Dataset, tmp_path: Path) -> None:
    path = tmp_path / "alaska.zarr"
    with pytest.raises(ValueError, match="same store"):
        write_stores({str(path): cube, path: cube}, progress=False)
    assert not path.exists()


# -- atomic writes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [RuntimeError("sensor file truncated"), KeyboardInterrupt()],
    ids=lambda error: type(error).__name__,
)
def test_a_failed_write_leaves_the_old_store(
    cube: xr.Dataset, store: Path, tmp_path: Path, error: BaseException
) -> None:
    path = Path(shutil.copytree(store, tmp_path / "alaska.zarr"))
    before = snapshot(path)
    # one chunk fails at once while others are still being written
    chunk = Chunk(error=error, fail_at=(1, 0, 1), delay=0.02)

    with pytest.raises(type(error)):
        write_zarr(failing_cube(cube, chunk), path, overwrite=True, chunks=LAYOUT, progress=False)

    assert chunk.calls >= 1
    assert chunk.running == 0  # no chunk still writing after the call returned
    time.sleep(3 * chunk.delay)  # a straggler would have shown itself by now
    assert snapshot(path) == before
    assert leftovers(tmp_path) == []


def test_write_stores_computes_shared_tasks_once(tmp_path: Path) -> None:
    chunk = Chunk()
    thaw = chunk.apply(zeros())  # two chunks of 12 months
    cube = thaw_cube(thaw)
    truth = thaw_cube(thaw * 2)

    paths = write_stores(
        {tmp_path / "cube.zarr": cube, tmp_path / "truth.zarr": truth}, progress=False
    )

    assert chunk.calls == 2
    assert [p.name for p in paths] == ["cube.zarr", "truth.zarr"]
    assert float(open_zarr(paths[0])["alt"].sum()) == 24 * 4 * 4
    assert float(open_zarr(paths[1])["alt"].sum()) == 2 * 24 * 4 * 4
    # written one at a time, the shared chunks are computed once per store
    write_zarr(cube, tmp_path / "cube-again.zarr", progress=False)
    write_zarr(truth, tmp_path / "truth-again.zarr", progress=False)
    assert chunk.calls == 2 + 4


def test_write_stores_failure_leaves_both_old_stores(tmp_path: Path) -> None:
    old = {tmp_path / "cube.zarr": thaw_cube(zeros()), tmp_path / "truth.zarr": thaw_cube(zeros())}
    write_stores(old, progress=False)
    before = {path: snapshot(path) for path in old}
    chunk = Chunk(error=RuntimeError("tower record corrupt"), fail_at=(1, 0, 0), delay=0.02)

    new = {
        tmp_path / "cube.zarr": thaw_cube(zeros() + 5),
        tmp_path / "truth.zarr": thaw_cube(chunk.apply(zeros())),
    }
    with pytest.raises(RuntimeError, match="tower record corrupt"):
        write_stores(new, overwrite=True, progress=False)

    assert chunk.running == 0
    time.sleep(3 * chunk.delay)
    assert {path: snapshot(path) for path in old} == before
    assert leftovers(tmp_path) == []


def test_a_failed_rename_puts_every_old_store_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = {tmp_path / "cube.zarr": thaw_cube(zeros()), tmp_path / "truth.zarr": thaw_cube(zeros())}
    write_stores(old, progress=False)
    before = {path: snapshot(path) for path in old}
    replace = os.replace

    def failing_replace(src, dst) -> None:
        # the first store is already swapped in when the second one's rename fails
        if Path(src).name.startswith(".truth.zarr.geocryo-ready-"):
            raise OSError("disk quota exceeded")
        replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    new = {path: thaw_cube(zeros() + 5) for path in old}
    with pytest.raises(OSError, match="disk quota exceeded"):
        write_stores(new, overwrite=True, progress=False)

    assert {path: snapshot(path) for path in old} == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_any_local_scheduler_writes_the_same_store(tmp_path: Path, scheduler: str) -> None:
    with dask.config.set(scheduler=scheduler):
        path = write_zarr(thaw_cube(zeros() + 3), tmp_path / "thaw.zarr", progress=False)
    assert float(open_zarr(path)["alt"].mean()) == 3.0
