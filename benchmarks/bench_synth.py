"""Writing the synthetic Alaska: geocryo (generate + write) against plain zarr (write only).

geocryo builds the cube lazily and streams it to a Zarr v3 store chunk by chunk; each chunk's
evolution is one compiled XLA computation, compiled once per block shape in a process (the
benchmark prints that first-run cost, then times warm runs). The reference writes the same
arrays, already in memory as numpy, with the same chunks and codecs through plain ``zarr``.
Both run here, one after the other, on the same disk.

A second part generates and writes a 1024 x 1024 x 60-month cube in a child process and prints
its peak resident memory.

Usage::

    python benchmarks/bench_synth.py [--ny 256] [--nx 256] [--months 240] [--repeat 5]

The last line is ``write ratio: X`` (geocryo seconds / reference seconds; goal X <= 1.5).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import xarray as xr
import zarr

import geocryo
from geocryo.io.stores import _prepare, default_chunks

_CHILD = """
import sys, geocryo
cube, truth = geocryo.synthetic.alaska(ny={ny}, nx={nx}, start="2000-01", periods={months})
geocryo.write_zarr(cube, sys.argv[1], progress=False)
"""


def _end(months: int) -> str:
    return f"{pd.Timestamp('2000-01-01') + pd.DateOffset(months=months - 1):%Y-%m}"


def peak_memory(ny: int, nx: int, months: int, where: Path) -> float:
    """Peak RSS (GiB) of a child process that generates and writes a cube of this size."""
    code = _CHILD.replace("periods={months}", f'end="{_end(months)}"').format(ny=ny, nx=nx)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([sys.executable, "-c", code, str(where)], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(before, after) / 2**20  # ru_maxrss is in KiB on Linux


def write_reference(ds: xr.Dataset, arrays: dict[str, np.ndarray], path: Path) -> None:
    """Write in-memory arrays with plain zarr, same chunks and codecs as geocryo's store."""
    chunks = default_chunks(ds)
    group = zarr.open_group(path, mode="w-", zarr_format=3)
    for name, values in arrays.items():
        var = ds[name]
        array = group.create_array(
            name,
            shape=values.shape,
            dtype=values.dtype,
            chunks=tuple(chunks.get(dim, var.sizes[dim]) for dim in var.dims),
            fill_value=np.nan if values.dtype.kind == "f" else 0,
            dimension_names=var.dims,
        )
        array[...] = values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ny", type=int, default=256)
    parser.add_argument("--nx", type=int, default=256)
    parser.add_argument("--months", type=int, default=240)
    parser.add_argument("--repeat", type=int, default=5, help="best of this many runs each")
    parser.add_argument(
        "--memory-size", type=int, nargs=3, default=(1024, 1024, 60), metavar=("NY", "NX", "MONTHS")
    )
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    try:
        if not args.skip_memory:
            ny, nx, months = args.memory_size
            peak = peak_memory(ny, nx, months, work / "big.zarr")
            size = sum(f.stat().st_size for f in (work / "big.zarr").rglob("*") if f.is_file())
            print(
                f"peak memory generating + writing {ny} x {nx} x {months} months: "
                f"{peak:.2f} GiB (store {size / 2**30:.2f} GiB on disk; goal < 3 GB)"
            )
            shutil.rmtree(work / "big.zarr")

        cube, _ = geocryo.synthetic.alaska(ny=args.ny, nx=args.nx, end=_end(args.months))
        prepared, _ = _prepare(cube, default_chunks(cube))
        names = list(prepared.variables)
        generate = []
        for _ in range(2):  # the first run also compiles the block's evolution (XLA)
            t = time.perf_counter()
            arrays = dict(zip(names, dask.compute(*[prepared[n].data for n in names]), strict=True))
            generate.append(time.perf_counter() - t)
        nbytes = sum(a.nbytes for a in arrays.values())
        print(
            f"cube {args.ny} x {args.nx} x {args.months} months: {len(cube.data_vars)} variables, "
            f"{nbytes / 2**30:.2f} GiB in memory; generating it into numpy took "
            f"{generate[0]:.2f} s the first time (with compilation), {generate[1]:.2f} s after"
        )

        ours, reference = [], []
        for i in range(args.repeat):
            # Each run starts from the same state: the previous runs' stores deleted and their
            # files flushed, so that neither side pays for the other's write-back or page cache.
            os.sync()
            t = time.perf_counter()
            geocryo.write_zarr(cube, work / "geocryo.zarr", progress=False)
            ours.append(time.perf_counter() - t)
            os.sync()
            t = time.perf_counter()
            write_reference(prepared, arrays, work / "zarr.zarr")
            reference.append(time.perf_counter() - t)
            if i == 0:  # the same bytes: every variable of the two stores equal
                check = geocryo.open_zarr(work / "geocryo.zarr")
                for name in prepared.data_vars:
                    stored = zarr.open_array(work / "zarr.zarr", path=name)[...]
                    np.testing.assert_array_equal(check[name].values, stored)
            shutil.rmtree(work / "geocryo.zarr")
            shutil.rmtree(work / "zarr.zarr")
            os.sync()
            time.sleep(1.0)  # let the file system finish freeing them

        print(f"geocryo generate + write: best {min(ours):.2f} s of {[round(s, 2) for s in ours]}")
        print(
            f"plain zarr write of the same arrays: best {min(reference):.2f} s "
            f"of {[round(s, 2) for s in reference]}"
        )
        print(f"write ratio: {min(ours) / min(reference):.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
