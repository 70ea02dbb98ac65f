"""Time of ``import geocryo`` against ``import xarray``, the floor it builds on.

``import geocryo`` loads the cube conventions and registers the ``ds.geocryo`` accessor; JAX,
Flax, Intake, zarr and xskillscore load when a function that needs them is first used. Each
import runs in a fresh interpreter, alternating, ``--repeat`` times; the best of each counts.

Usage::

    python benchmarks/bench_import.py [--repeat 7]

Prints the best times, then last ``import ratio: X`` (geocryo / xarray; goal: geocryo under
1 s, so about the cost of xarray itself).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CODE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def seconds(module: str) -> float:
    out = subprocess.run(
        [sys.executable, "-X", "frozen_modules=on", "-c", CODE.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    best = {"geocryo": float("inf"), "xarray": float("inf")}
    for _ in range(args.repeat):
        for module in best:
            best[module] = min(best[module], seconds(module))
    for module, value in best.items():
        print(f"import {module}: {value:.3f} s (best of {args.repeat})")
    print(f"import ratio: {best['geocryo'] / best['xarray']:.2f}")


if __name__ == "__main__":
    main()
