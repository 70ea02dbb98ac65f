"""Scaling out on Dask: the same calls on a ``LocalCluster`` of two worker processes give what the
local threaded scheduler gives, and the work really runs on the workers.

Training on several JAX devices (4 forced host devices) is tested in ``test_train.py``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import dask
import numpy as np
import pytest
import worlds
import xarray as xr
from distributed import Client, LocalCluster, get_task_stream, get_worker

import geocryo
from geocryo.batching import PatchStream, WindowSpec
from geocryo.preprocess import PreprocessConfig, Preprocessor

pytestmark = [
    pytest.mark.slow,
    # SMAP starts in 2015 and the UAVSAR campaigns in 2017: not in this record
    pytest.mark.filterwarnings("ignore:preprocess.*no observed value:UserWarning"),
]

CONFIG = PreprocessConfig(detrend=True, pca_components=3, trend_min_months=12)
SPEC = WindowSpec(lookback=6, lead=1, patch=8, overlap=2, batch_size=16)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """Two worker processes with one thread each; not the default scheduler of other tests.

    Starting worker processes sets variables in this process's environment for them
    (``OMP_NUM_THREADS=1``, ...); they are put back afterwards, so later tests (and the
    processes they start) see the environment they would have seen without this module.
    """
    before = dict(os.environ)
    try:
        with (
            LocalCluster(
                n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
            ) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            yield client
    finally:
        for name in set(os.environ) - set(before):
            del os.environ[name]
        os.environ.update(before)


@pytest.fixture(scope="module")
def synthetic() -> tuple[xr.Dataset, xr.Dataset]:
    """A lazy 16 x 16 synthetic Alaska over 2000-2004, with 12 sites."""
    return worlds.world("five_years", load=False)


@pytest.fixture(scope="module")
def store(synthetic, tmp_path_factory) -> Path:
    """The synthetic cube in a Zarr store (written by the local scheduler), in small chunks."""
    path = tmp_path_factory.mktemp("scaling") / "alaska.zarr"
    with dask.config.set(scheduler="threads"):
        return geocryo.write_zarr(
            synthetic[0], path, chunks={"time": 24, "y": 8, "x": 8, "band": 64}, progress=False
        )


@pytest.fixture(scope="module")
def cube(store) -> xr.Dataset:
    return geocryo.open_zarr(store)


@pytest.fixture(scope="module")
def train(cube):
    return geocryo.TimeSplit().periods(cube.time, lookback=SPEC.lookback)["train"]


def fit_plan(cube, train, scheduler):
    with dask.config.set(scheduler=scheduler):
        return Preprocessor(CONFIG).fit(cube, train, progress=False)


def test_preprocessing_on_the_cluster_is_the_local_one(client, cube, train) -> None:
    local = fit_plan(cube, train, "threads")
    with get_task_stream(client) as tasks:
        remote = fit_plan(cube, train, client)
    assert len(tasks.data) > 100  # the statistics were computed by the workers

    xr.testing.assert_identical(remote.statistics, local.statistics)
    xr.testing.assert_identical(remote.trends, local.trends)
    for name, loadings in local.components.items():
        xr.testing.assert_identical(remote.components[name], loadings)
    # the numbers are those of the data, not fallbacks
    stats = local.statistics
    assert (stats["fallback"].sel(variable=["lst", "air_temperature"]) == "").all()
    assert 0.5 < float(stats["explained_variance_ratio"].sum()) <= 1.0

    with dask.config.set(scheduler=client):
        prepared_remote = remote.transform(cube).compute()
    with dask.config.set(scheduler="threads"):
        prepared_local = local.transform(cube).compute()
    xr.testing.assert_identical(prepared_remote, prepared_local)
    # standardised on the training months: mean 0, std 1 there
    lst = prepared_local["lst"].sel(time=train)
    assert abs(float(lst.mean())) < 1e-3
    assert float(lst.std()) == pytest.approx(1.0, abs=1e-3)


def test_the_pca_projection_is_bitwise_the_same_on_the_cluster(client, tmp_path) -> None:
    # A mosaic large enough that a BLAS product would split its sums over threads locally but
    # not on the single-threaded workers; the projection must not depend on it.
    world = worlds.world("mosaic", load=False)[0]
    path = tmp_path / "mosaic.zarr"
    with dask.config.set(scheduler="threads"):
        geocryo.write_zarr(world[["hyperspectral_reflectance"]], path, progress=False)
    mosaic = geocryo.open_zarr(path)
    with dask.config.set(scheduler="threads"):
        local = Preprocessor().fit(mosaic, progress=False)  # 4 components
    with dask.config.set(scheduler=client):
        remote = Preprocessor().fit(mosaic, progress=False)
    xr.testing.assert_identical(
        remote.components["hyperspectral_reflectance"],
        local.components["hyperspectral_reflectance"],
    )
    with dask.config.set(scheduler="threads"):
        scores = local.transform(mosaic).compute()
    with dask.config.set(scheduler=client):
        xr.testing.assert_identical(remote.transform(mosaic).compute(), scores)
    # a few latent surface properties behind 64 bands: 4 components hold most of the variance
    assert float(local.statistics["explained_variance_ratio"].sum()) > 0.9


def test_streaming_from_the_cluster_gives_the_local_batches(client, cube, train) -> None:
    plan = fit_plan(cube, train, "threads")
    prepared = plan.transform(cube)

    def epoch(scheduler) -> list:
        stream = PatchStream(prepared, train, SPEC, seed=1, max_slab_bytes=2**18)
        with dask.config.set(scheduler=scheduler):
            return list(stream.epoch(1))

    local = epoch("threads")
    with get_task_stream(client) as tasks:
        remote = epoch(client)
    assert tasks.data  # the slabs were read by the workers
    assert len(remote) == len(local) > 1
    for a, b in zip(remote, local, strict=True):
        assert a.inputs.keys() == b.inputs.keys()
        for group in a.inputs:
            np.testing.assert_array_equal(a.inputs[group], b.inputs[group])
        np.testing.assert_array_equal(a.targets, b.targets)
        np.testing.assert_array_equal(a.mask, b.mask)
        np.testing.assert_array_equal(a.time, b.time)
    # each batch holds observed targets, masked to exactly where they were observed
    assert all(batch.mask.any() for batch in local)
    assert set(np.unique(local[0].mask)) <= {0.0, 1.0}


def test_the_active_client_writes_the_store(client, synthetic, store, tmp_path) -> None:
    # The synthetic world itself is computed chunk by chunk on the workers.
    path = tmp_path / "alaska.zarr"
    with get_task_stream(client) as tasks, dask.config.set(scheduler=client):
        geocryo.write_zarr(
            synthetic[0], path, chunks={"time": 24, "y": 8, "x": 8, "band": 64}, progress=False
        )
    assert len(tasks.data) > 20
    xr.testing.assert_identical(geocryo.open_zarr(path).load(), geocryo.open_zarr(store).load())


def test_a_client_passed_writes_the_store(client, cube, tmp_path) -> None:
    # Chunks that can only be computed on a worker: the client passed does the writing, while
    # the local threaded scheduler stays the default.
    def on_a_worker(block: np.ndarray) -> np.ndarray:
        get_worker()  # raises ValueError outside a dask worker
        return block

    ds = cube.copy()
    ds["alt"] = ds["alt"].copy(data=ds["alt"].data.map_blocks(on_a_worker, dtype=np.float32))
    with dask.config.set(scheduler="threads"):
        with pytest.raises(ValueError, match="No worker found"):
            geocryo.write_zarr(ds, tmp_path / "local.zarr", progress=False)
        path = geocryo.write_zarr(ds, tmp_path / "remote.zarr", progress=False, client=client)
    back = geocryo.open_zarr(path)
    np.testing.assert_array_equal(back["alt"].values, cube["alt"].values)
    assert int(back["alt"].notnull().sum()) > 100  # the sites' records, NaN elsewhere


def test_a_failed_write_on_the_cluster_leaves_the_old_store(client, cube, store, tmp_path):
    path = Path(shutil.copytree(store, tmp_path / "alaska.zarr"))
    old = geocryo.open_zarr(path).load()

    def fails_on_one_chunk(block: np.ndarray, block_info=None) -> np.ndarray:
        if block_info[0]["chunk-location"] == (1, 1, 0):
            raise RuntimeError("sensor file truncated")
        return block + 1

    newer = cube.copy()
    newer["lst"] = newer["lst"].copy(
        data=newer["lst"].data.map_blocks(fails_on_one_chunk, dtype=np.float32)
    )
    with pytest.raises(RuntimeError, match="sensor file truncated"):
        geocryo.write_zarr(newer, path, overwrite=True, progress=False, client=client)
    xr.testing.assert_identical(geocryo.open_zarr(path).load(), old)
