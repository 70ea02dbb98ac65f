"""Zarr v3 stores: written atomically with a progress bar, opened lazily and validated."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import dask
import dask.array as da
import dask.base
import dask.threaded
import numpy as np
import xarray as xr
import zarr
import zarr.api.asynchronous
from dask.array.optimization import optimize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from .._progress import dask_progress
from ..cube import validate
from .atomic import AtomicWrite, commit_all, restore

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["default_chunks", "open_zarr", "write_stores", "write_zarr"]

#: Target size of one stored chunk, in bytes (uncompressed).
CHUNK_BYTES = 8 * 2**20


def default_chunks(ds: xr.Dataset) -> dict[str, int]:
    """Chunk sizes for storing ``ds``: 128 x 128 pixel tiles, whole extra dims, and as many
    months as fit in about 8 MiB per chunk, rounded to whole years where there is room.

    Tiles of all months of a block of pixels are what training reads (look-back windows), so
    time is kept long and space short.
    """
    sizes = dict(ds.sizes)
    chunks = {dim: min(size, 128) for dim, size in sizes.items() if dim in ("y", "x")}
    for dim, size in sizes.items():
        if dim not in ("time", "y", "x"):
            chunks[dim] = size
    if "time" in sizes:
        pixels = chunks.get("y", 1) * chunks.get("x", 1)
        months = max(1, CHUNK_BYTES // (4 * pixels))
        if months >= 12:
            months -= months % 12
        chunks["time"] = int(min(sizes["time"], months))
    return chunks


def _prepare(ds: xr.Dataset, chunks: Mapping[str, int]) -> tuple[xr.Dataset, dict]:
    ds = ds.copy()  # new variables (sharing the data), whose encodings can be changed
    encoding: dict[str, dict] = {}
    for var in ds.variables.values():
        # How values are encoded (times, packed integers and their fill values) carries over;
        # how they were laid out in another store (chunks, codecs) would fight the new layout.
        keep = ("units", "calendar", "dtype", "scale_factor", "add_offset", "_FillValue")
        var.encoding = {k: v for k, v in var.encoding.items() if k in keep}
    # A fresh token names the chunks of in-memory variables; without one dask would hash
    # every byte of them to name their chunks.
    ds = ds.chunk({dim: chunks.get(dim, -1) for dim in ds.dims}, token=uuid.uuid4().hex)
    for name, var in ds.data_vars.items():
        # xarray takes a variable's encoding from here alone, in place of its own
        enc = dict(var.encoding)
        enc["chunks"] = tuple(chunks.get(dim, var.sizes[dim]) for dim in var.dims)
        stored = np.dtype(enc.get("dtype", var.dtype))
        if np.issubdtype(stored, np.floating) and "_FillValue" not in enc:
            enc["fill_value"] = np.nan
        encoding[name] = enc
    return ds, encoding


def write_zarr(
    ds: xr.Dataset,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    chunks: Mapping[str, int] | None = None,
    progress: bool = True,
    validate_cube: bool = True,
    client: Client | None = None,
) -> Path:
    """Write a cube to a Zarr v3 store, atomically.

    The store is built beside its final place and renamed into it only once every chunk has
    been written, so a failed or interrupted write leaves any store already at ``path``
    untouched, and a reader never sees a half-written store.

    Parameters
    ----------
    ds
        The cube; lazy (dask-backed) variables are computed chunk by chunk as they are written.
    path
        A local directory path for the store (conventionally ending in ``.zarr``).
    overwrite
        Replace a store that already exists at ``path``. Without it, an existing path is an error.
    chunks
        Stored chunk sizes per dim; by default :func:`default_chunks`.
    progress
        Show a progress bar while chunks are written.
    validate_cube
        Check the cube conventions first (metadata only, computes nothing).
    client
        A :class:`dask.distributed.Client` whose workers write the chunks; by default the
        active client if there is one (``Client()`` makes itself the default), else the local
        threaded scheduler. Workers write to ``path`` themselves, so it must be a file system
        they share with the caller (the same machine, or a shared disk on a cluster). The
        progress bar shows on the local scheduler only; a client has its dashboard.

    Returns
    -------
    pathlib.Path
        The store's path.
    """
    (out,) = write_stores(
        {path: ds},
        overwrite=overwrite,
        chunks=chunks,
        progress=progress,
        validate_cube=validate_cube,
        client=client,
    )
    return out


def write_stores(
    stores: Mapping[str | os.PathLike, xr.Dataset],
    *,
    overwrite: bool = False,
    chunks: Mapping[str, int] | None = None,
    progress: bool = True,
    validate_cube: bool = True,
    client: Client | None = None,
) -> list[Path]:
    """Write several datasets to Zarr v3 stores in one pass, each atomically.

    Datasets that share dask tasks (a synthetic cube and its truth) are computed once. Every
    store is staged first; only when all of them are complete are they renamed into place, so a
    failure leaves every existing store untouched. Parameters are those of :func:`write_zarr`.
    """
    paths = []
    for target in stores:
        if isinstance(target, str) and "://" in target:
            raise ValueError(
                f"write_zarr writes local stores atomically; got the URL {target!r}. "
                "Write to a local path, then copy the store to object storage."
            )
        paths.append(Path(target).expanduser().absolute())
    if len(set(paths)) < len(paths):
        raise ValueError("two datasets would be written to the same store")

    writes: list[AtomicWrite] = []
    try:
        lazy = []
        for path, ds in zip(paths, stores.values(), strict=True):
            writes.append(
                AtomicWrite(path, overwrite=overwrite, replaceable=_is_store, what="a Zarr store")
            )
            if validate_cube:
                validate(ds)
            prepared, encoding = _prepare(
                ds, dict(default_chunks(ds) if chunks is None else chunks)
            )
            # The metadata now; the chunks below, every store's in one graph. (The writes
            # xarray would return are finalised one store at a time, which would compute the
            # tasks the stores share, a block of the synthetic cube and its truth, once each.)
            prepared.to_zarr(
                writes[-1].staging,
                mode="w-",
                encoding=encoding,
                consolidated=False,
                zarr_format=3,
                compute=False,
            )
            lazy.append((writes[-1].staging, prepared, encoding))
        jobs = [_chunk_writes(lazy)]
        names = ", ".join(path.name for path in paths)
        with dask_progress(progress, f"writing {names}"):
            _compute(jobs, client)
    except BaseException:
        for write in writes:
            write.abort()
        raise
    return commit_all(writes)


def _is_store(path: Path) -> bool:
    return (path / "zarr.json").is_file()


def _encoded(staging: Path, ds: xr.Dataset, encoding: dict) -> dict[str, xr.Variable]:
    """The dask-backed variables of ``ds`` as the store at ``staging`` holds them (CF-encoded as
    xarray encodes them: times, dtypes, fill values), still lazy."""
    store = xr.backends.ZarrStore.open_group(str(staging), mode="r", zarr_format=3)
    encoded = {}
    for name, var in ds.variables.items():
        if not isinstance(var.data, da.Array):
            continue
        var = var.copy(deep=False)
        if name in encoding:  # what to_zarr was given replaces the variable's own, as in xarray
            var.encoding = {
                k: v for k, v in encoding[name].items() if k not in ("chunks", "fill_value")
            }
        encoded[name] = store.encode_variable(var, name=name)
    store.close()
    return encoded


def _chunk_writes(stores: list[tuple[Path, xr.Dataset, dict]]) -> Delayed:
    """The chunks of every store, written by one task per block of the cube.

    A block is one chunk index over the same dims (one tile of months x cells, say): its task
    writes the chunk of every variable there concurrently through zarr's asynchronous API, so
    that encoding and compressing them runs in parallel while the scheduler's threads compute
    the next blocks. Tasks that stores share run once.
    """
    sources = [
        (staging, name, var.dims, var.data)
        for staging, ds, encoding in stores
        for name, var in _encoded(staging, ds, encoding).items()
    ]
    arrays = [data for *_, data in sources]
    # Optimized as one graph, so that a task several chunks share (a block of the synthetic
    # cube that yields all its variables) is not fused into each of them, and runs once.
    keys = list(dask.core.flatten([array.__dask_keys__() for array in arrays]))
    graph = optimize(HighLevelGraph.merge(*[array.__dask_graph__() for array in arrays]), keys)
    blocks: dict[tuple, list] = {}
    for staging, name, dims, array in sources:
        edges = [np.cumsum((0, *sizes)) for sizes in array.chunks]
        for index in np.ndindex(*array.numblocks):
            region = tuple(
                slice(int(e[i]), int(e[i + 1])) for e, i in zip(edges, index, strict=True)
            )
            blocks.setdefault((staging, dims, index), []).append(
                (name, region, (array.name, *index))
            )
    name = f"write-chunks-{uuid.uuid4().hex}"
    layer: dict = {}
    for n, ((staging, _, _), chunks) in enumerate(blocks.items()):
        targets = [(variable, region) for variable, region, _ in chunks]
        layer[(name, n)] = (_write_chunks, str(staging), targets, *[key for *_, key in chunks])
    layer[name] = (len, list(layer))  # done when every block is
    return Delayed(name, {**graph, **layer})


_OPENED: dict[tuple[str, str], zarr.AsyncArray] = {}


async def _open_array(store: str, variable: str) -> zarr.AsyncArray:
    """The array ``variable`` of the store being written, opened once per process and store
    (staging paths are unique to one write)."""
    key = (store, variable)
    if key not in _OPENED:
        if len(_OPENED) > 1024:  # forget the arrays of finished writes
            _OPENED.clear()
        _OPENED[key] = await zarr.api.asynchronous.open_array(
            store=store, path=variable, mode="r+", zarr_format=3
        )
    return _OPENED[key]


def _write_chunks(store: str, targets: list[tuple[str, tuple[slice, ...]]], *chunks) -> None:
    """Write ``chunks`` to their ``(variable, region)`` targets in ``store``, concurrently."""

    async def write() -> None:
        arrays = await asyncio.gather(*[_open_array(store, variable) for variable, _ in targets])
        await asyncio.gather(
            *[
                array.setitem(region, np.asarray(chunk))
                for array, (_, region), chunk in zip(arrays, targets, chunks, strict=True)
            ]
        )

    _run(write())


def _run(coroutine) -> None:
    """Run ``coroutine`` to its end in this thread, or in a new one where this thread already
    runs an event loop (the synchronous scheduler in a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coroutine)
        return
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()


def _compute(jobs: list, client: Client | None = None) -> None:
    """Compute the write jobs: on ``client`` or the active distributed client if any; on the
    local threaded scheduler, in a private thread pool that is drained before returning.

    When one chunk fails, dask raises at once while the other chunks in flight keep running;
    draining the pool keeps such stragglers from writing (and recreating the staging store)
    after the failure has been cleaned up. On a client, the chunks not yet started are
    cancelled; the few already running on workers finish on their own.
    """
    scheduler = dask.base.get_scheduler(collections=jobs)
    if client is None:
        client = _distributed_client(scheduler)
    if client is not None:
        futures = client.compute(jobs)
        try:
            client.gather(futures)
        except BaseException:
            client.cancel(futures)
            raise
        return
    if scheduler is not dask.threaded.get or dask.config.get("pool", None) is not None:
        dask.compute(*jobs)
        return
    workers = dask.config.get("num_workers", None) or dask.threaded.CPU_COUNT
    pool = dask.threaded.ContextAwareThreadPoolExecutor(workers)
    try:
        dask.compute(*jobs, pool=pool)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _distributed_client(scheduler) -> Client | None:
    """The :class:`distributed.Client` behind a dask scheduler (its bound ``get``), or None."""
    owner = getattr(scheduler, "__self__", None)
    if owner is None:
        return None
    from distributed import Client

    return owner if isinstance(owner, Client) else None


def open_zarr(
    path: str | os.PathLike,
    *,
    chunks: Mapping[str, int] | str | None = "auto-store",
    validate_cube: bool = True,
    **kwargs,
) -> xr.Dataset:
    """Open a cube store lazily (dask arrays, nothing read but metadata).

    Parameters
    ----------
    path
        Path or URL of a Zarr v3 store.
    chunks
        ``"auto-store"`` (default) uses the stored chunks; anything else goes to
        :func:`xarray.open_zarr`.
    validate_cube
        Check the cube conventions on the opened dataset.
    **kwargs
        Passed on to :func:`xarray.open_zarr` (``storage_options`` for remote stores).
    """
    if isinstance(path, os.PathLike) or "://" not in str(path):
        local = Path(path).expanduser()
        restore(local)  # a write killed while swapping left the store beside its place
        if not local.exists():
            raise FileNotFoundError(
                f"no store at {local}; write one with `geocryo synth --out {local}` "
                "or geocryo.write_zarr(cube, path)"
            )
        path = local
    ds = xr.open_zarr(
        path, consolidated=False, chunks={} if chunks == "auto-store" else chunks, **kwargs
    )
    if validate_cube:
        validate(ds)
    return ds
