"""Streaming patches: geocryo's slab stream against plain xbatcher and raw zarr, on one store.

The synthetic Alaska is written to a Zarr v3 store in a temporary directory and opened lazily.
On that store, in one run:

- geocryo's :class:`~geocryo.batching.PatchStream` (engine ``"slab"``, multimodal, the default
  window spec, ``require_target=False`` so that every patch counts) streams one epoch;
- plain :class:`xbatcher.BatchGenerator` over the same lazily opened store cuts the same patches
  (``lookback + lead`` months x ``p`` x ``p`` cells, same overlap) and loads them into numpy, for
  a fixed number of patches (its rate is extrapolated);
- plain ``zarr`` reads (decodes) every array of the store, best of two.

Then two child processes stream one epoch each, over this cube and over one twice as large in y
and x (4x on disk), and print their peak resident memory.

Usage::

    python benchmarks/bench_stream.py [--ny 256] [--nx 256] [--months 240]
                                      [--xbatcher-patches 200] [--skip-memory]

Prints ``patches/s ratio vs xbatcher: X`` (goal >= 20), ``bytes/s ratio vs raw zarr: Y`` (input
bytes of the batches per second over decoded bytes per second; goal >= 0.5), and last
``stream ratio: X``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xbatcher
import zarr

import geocryo
from geocryo.batching import PatchStream, WindowSpec

_CHILD = """
import resource, sys, time
import geocryo
from geocryo.batching import PatchStream


def memory(key):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1]) * 1024


def peak_bytes():
    # ru_maxrss survives exec, so a child would report its parent's size when that was larger;
    # the high-water mark of this process image is VmHWM.
    try:
        return memory("VmHWM:")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


ds = geocryo.open_zarr(sys.argv[1])
stream = PatchStream(ds, ds.indexes["time"], require_target=False)
try:
    before = memory("VmRSS:")
except OSError:
    before = 0
start, patches = time.perf_counter(), 0
for batch in stream:
    patches += len(batch.time)
seconds = time.perf_counter() - start
print(patches, seconds, peak_bytes(), before)
"""


def _end(months: int) -> str:
    return f"{pd.Timestamp('2000-01-01') + pd.DateOffset(months=months - 1):%Y-%m}"


def write_cube(ny: int, nx: int, months: int, path: Path) -> float:
    """Write the synthetic cube to ``path``; seconds taken."""
    start = time.perf_counter()
    cube, _ = geocryo.synthetic.alaska(ny=ny, nx=nx, end=_end(months))
    geocryo.write_zarr(cube, path, progress=False)
    return time.perf_counter() - start


def store_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def bench_stream(path: Path) -> tuple[int, int, float]:
    """One epoch of geocryo's stream: (patches, input bytes, seconds)."""
    ds = geocryo.open_zarr(path)
    stream = PatchStream(ds, ds.indexes["time"], WindowSpec(), require_target=False)
    start, patches, nbytes = time.perf_counter(), 0, 0
    for batch in stream:
        patches += len(batch.time)
        nbytes += sum(v.nbytes for v in batch.inputs.values())
    return patches, nbytes, time.perf_counter() - start


def bench_xbatcher(path: Path, n: int) -> tuple[int, float, int]:
    """The first ``n`` windows of plain xbatcher, loaded as numpy: (patches, seconds, windows)."""
    ds = geocryo.open_zarr(path)
    spec = WindowSpec()
    generator = xbatcher.BatchGenerator(
        ds[list(ds.data_vars)].reset_coords(drop=True),
        input_dims={"time": spec.span, "y": spec.patch, "x": spec.patch},
        input_overlap={"time": spec.span - 1, "y": spec.overlap, "x": spec.overlap},
    )
    # The same patch as geocryo's first unshuffled sample: months 0..L+lead-1, origin (0, 0).
    first = PatchStream(ds, ds.indexes["time"], spec, require_target=False, shuffle=False)
    lst = next(iter(first)).inputs["remote_sensing"][
        0, ..., first.channels["remote_sensing"].index("lst")
    ]
    start, patches = time.perf_counter(), 0
    for window in generator:
        arrays = {name: var.values for name, var in window.data_vars.items()}
        if patches == 0:
            np.testing.assert_array_equal(np.nan_to_num(arrays["lst"][: spec.lookback]), lst)
        patches += 1
        if patches == n:
            break
    return patches, time.perf_counter() - start, len(generator)


def bench_zarr(path: Path, repeat: int = 2) -> tuple[int, float]:
    """Decode every array of the store with plain zarr: (bytes, best seconds)."""
    best, nbytes = float("inf"), 0
    for _ in range(repeat):
        group = zarr.open_group(path, mode="r")
        start, nbytes = time.perf_counter(), 0
        for _, array in group.arrays():
            nbytes += array[...].nbytes
        best = min(best, time.perf_counter() - start)
    return nbytes, best


def peak_memory(path: Path) -> tuple[int, float, float, float]:
    """Stream one epoch in a child process: (patches, seconds, peak RSS, RSS before streaming)."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)], check=True, capture_output=True, text=True
    )
    patches, seconds, peak, before = out.stdout.split()
    return int(patches), float(seconds), float(peak), float(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ny", type=int, default=256)
    parser.add_argument("--nx", type=int, default=256)
    parser.add_argument("--months", type=int, default=240)
    parser.add_argument("--xbatcher-patches", type=int, default=200)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    try:
        path = work / "cube.zarr"
        seconds = write_cube(args.ny, args.nx, args.months, path)
        print(
            f"cube {args.ny} x {args.nx} x {args.months} months: store "
            f"{store_bytes(path) / 2**20:.0f} MiB on disk, written in {seconds:.1f} s"
        )
        spec = WindowSpec()
        patches, nbytes, seconds = bench_stream(path)
        ours, ours_bytes = patches / seconds, nbytes / seconds
        print(
            f"geocryo stream (slab, multimodal, L={spec.lookback}, lead={spec.lead}, "
            f"p={spec.patch}, batch {spec.batch_size}): one epoch of {patches} patches in "
            f"{seconds:.1f} s: {ours:.0f} patches/s, {ours_bytes / 2**30:.2f} GiB/s of inputs"
        )
        count, seconds, windows = bench_xbatcher(path, args.xbatcher_patches)
        theirs = count / seconds
        same = "the same patches" if windows == patches else f"the stream has {patches}"
        print(
            f"plain xbatcher.BatchGenerator ({windows} windows, {same}): first {count} "
            f"in {seconds:.1f} s: {theirs:.1f} patches/s (one epoch would take "
            f"{windows / theirs / 60:.0f} min)"
        )
        nbytes, seconds = bench_zarr(path)
        raw = nbytes / seconds
        print(
            f"raw zarr decode of every array: {nbytes / 2**20:.0f} MiB in {seconds:.2f} s: "
            f"{raw / 2**30:.2f} GiB/s"
        )
        if not args.skip_memory:
            big = work / "big.zarr"
            seconds = write_cube(2 * args.ny, 2 * args.nx, args.months, big)
            print(
                f"cube {2 * args.ny} x {2 * args.nx} x {args.months} months: store "
                f"{store_bytes(big) / 2**20:.0f} MiB on disk, written in {seconds:.1f} s"
            )
            peaks = []
            for name, store in (("", path), ("4x ", big)):
                n, seconds, peak, before = peak_memory(store)
                peaks.append(peak)
                print(
                    f"peak memory streaming one epoch of the {name}cube ({n} patches, "
                    f"{seconds:.0f} s): {peak / 2**20:.0f} MiB "
                    f"({before / 2**20:.0f} MiB before the first batch)"
                )
            print(f"peak memory increase for a 4x larger cube: {peaks[1] / peaks[0] - 1:+.1%}")
        print(f"patches/s ratio vs xbatcher: {ours / theirs:.1f}")
        print(f"bytes/s ratio vs raw zarr: {ours_bytes / raw:.2f}")
        print(f"stream ratio: {ours / theirs:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
