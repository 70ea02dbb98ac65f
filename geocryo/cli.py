"""The ``geocryo`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def truth_path(out: Path) -> Path:
    """Where ``geocryo synth`` puts the truth beside a cube: ``a.zarr`` -> ``a-truth.zarr``."""
    name = out.name[: -len(".zarr")] if out.name.endswith(".zarr") else out.name
    return out.with_name(f"{name}-truth.zarr")


def _synth(args: argparse.Namespace) -> int:
    from . import synthetic
    from .io import open_zarr, write_stores

    out = Path(args.out)
    truth_out = Path(args.truth) if args.truth else truth_path(out)
    cube, truth = synthetic.alaska(
        ny=args.ny,
        nx=args.nx,
        start=args.start,
        end=args.end,
        seed=args.seed,
        n_sites=args.n_sites,
        resolution=args.resolution,
    )
    print(
        f"synthesising Alaska: {args.ny} x {args.nx} cells x {cube.sizes['time']} months "
        f"({args.start} to {args.end}), seed {args.seed}, {args.n_sites} sites",
        file=sys.stderr,
    )
    for path in (out, truth_out):
        if path.exists() and not args.overwrite:
            raise FileExistsError(f"{path} already exists; pass --overwrite to replace it")
    write_stores({out: cube, truth_out: truth}, overwrite=args.overwrite, progress=not args.quiet)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({size / 2**20:.1f} MiB) and its truth {truth_out}")
    print(open_zarr(out))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geocryo",
        description="Learning the permafrost carbon feedback from multimodal Earth observations.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"geocryo {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = commands.add_parser(
        "synth",
        help="write the synthetic Alaska cube (and its truth) to a Zarr store",
        description="Generate the synthetic Alaska and write it, chunk by chunk, to a Zarr v3 "
        "store; the complete noise-free targets go to a second store beside it.",
    )
    synth.add_argument(
        "--out", default="data/synthetic/alaska.zarr", help="cube store path (default: %(default)s)"
    )
    synth.add_argument(
        "--truth", default=None, help="truth store path (default: OUT with .zarr -> -truth.zarr)"
    )
    synth.add_argument("--ny", type=int, default=64, help="rows (default: %(default)s)")
    synth.add_argument("--nx", type=int, default=64, help="columns (default: %(default)s)")
    synth.add_argument("--start", default="2000-01", help="first month (default: %(default)s)")
    synth.add_argument("--end", default="2019-12", help="last month (default: %(default)s)")
    synth.add_argument("--seed", type=int, default=0, help="world seed (default: %(default)s)")
    synth.add_argument(
        "--n-sites", type=int, default=40, help="in situ sites (default: %(default)s)"
    )
    synth.add_argument(
        "--resolution",
        type=float,
        default=None,
        help="cell size in metres (default: 1000 km / max(ny, nx))",
    )
    synth.add_argument("--overwrite", action="store_true", help="replace existing stores")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(run=_synth)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``geocryo`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        parser.exit(2, f"geocryo {args.command}: error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())
