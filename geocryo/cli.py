"""The ``geocryo`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .runtime import tune_allocator

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


# ---------------------------------------------------------------------------------------------
# Learning: demo, fit, predict, evaluate


def _log(args: argparse.Namespace, text: str) -> None:
    if not getattr(args, "quiet", False):
        print(text, file=sys.stderr)


def _add_input(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input cube (one of --cube or --entry)")
    group.add_argument("--cube", default=None, help="path of a cube Zarr store")
    group.add_argument(
        "--catalog", default=None, help="Intake catalog YAML (default: geocryo's own catalog)"
    )
    group.add_argument(
        "--entry", default=None, help="catalog entry holding the cube, e.g. synthetic.alaska"
    )


def _open_input(args: argparse.Namespace):
    """The cube named by --cube or --catalog/--entry, and the truth beside it if any."""
    from .demo import open_entry
    from .io import open_zarr

    if args.cube is not None and args.entry is not None:
        raise ValueError("give either --cube PATH or --entry NAME (with --catalog), not both")
    if args.cube is not None:
        if args.catalog is not None:
            raise ValueError("--catalog goes with --entry, not with --cube")
        cube = open_zarr(args.cube)
        beside = truth_path(Path(args.cube))
        truth = open_zarr(beside) if beside.exists() else None
        _log(args, f"cube {args.cube}: {_shape(cube)}")
        return cube, truth
    if args.entry is None:
        raise ValueError(
            "no input cube: pass --cube PATH (a Zarr store, e.g. from `geocryo synth`) or "
            "--entry NAME [--catalog PATH]"
        )
    cube, truth = open_entry(args.catalog, args.entry)
    _log(args, f"cube {args.entry}: {_shape(cube)}")
    return cube, truth


def _shape(cube) -> str:
    months = cube.indexes["time"]
    return (
        f"{cube.sizes['y']} x {cube.sizes['x']} cells x {len(months)} months "
        f"({months[0]:%Y-%m} to {months[-1]:%Y-%m})"
    )


def _demo(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .demo import DEFAULT, QUICK, run_demo

    settings = QUICK if args.quick else DEFAULT
    if args.seed is not None:
        settings = replace(settings, seed=args.seed)
    run_demo(
        args.out,
        settings,
        catalog=args.catalog,
        entry=args.entry,
        progress=not args.quiet,
        log=print,
    )
    return 0


def _fit(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .forecast import FitConfig, fit

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it")
    cube, _ = _open_input(args)
    config = FitConfig()
    changes = {
        k: v
        for k, v in (
            ("features", args.features),
            ("layers", args.layers),
            ("batch_size", args.batch_size),
        )
        if v is not None
    }
    config = replace(config, **changes).with_train(
        ensemble=args.ensemble, epochs=args.epochs, seed=args.seed
    )
    _log(args, f"fitting {args.mode}: {args.epochs} epochs, {args.ensemble} members")
    model = fit(
        cube,
        mode=args.mode,
        lookback=args.lookback,
        lead=args.lead,
        patch=args.patch,
        config=config,
        progress=not args.quiet,
    )
    model.save(out, overwrite=args.overwrite)
    history = model.history
    print(
        f"{model}\nbest epoch {int(history.attrs['best_epoch']) + 1} of "
        f"{history.sizes['epoch']}, validation loss {history.attrs['best_val_loss']:.4f}\n"
        f"saved to {out}"
    )
    return 0


def _predict(args: argparse.Namespace) -> int:
    from .forecast import load
    from .io import write_zarr

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it")
    model = load(args.model)
    cube, _ = _open_input(args)
    _log(args, f"predicting with {model}")
    prediction = model.predict(cube, horizon=args.horizon, progress=not args.quiet)
    # Forecasts are not observations: they carry modality "prediction", outside the cube rules.
    write_zarr(
        prediction, out, overwrite=args.overwrite, progress=not args.quiet, validate_cube=False
    )
    names = ", ".join(f"{v} [{prediction[v].attrs.get('units', '')}]" for v in prediction)
    print(f"wrote {out}: {names}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from . import plots
    from .evaluation import evaluate, to_markdown
    from .forecast import load
    from .io import open_zarr
    from .report import calibration_markdown, write_report

    models = {}
    for path in args.model:
        model = load(path)
        name = model.mode if model.mode not in models else Path(path).name
        models[name] = model
    cube, truth = _open_input(args)
    if args.truth is not None:
        truth = open_zarr(args.truth)
    evaluation = evaluate(models, cube, truth, split=args.split, progress=not args.quiet)
    for scope in evaluation["scope"].values:
        print(f"## {scope}\n")
        print(to_markdown(evaluation, scope=str(scope)))
    print(calibration_markdown(evaluation))
    if args.out is not None:
        out = Path(args.out)
        figures = {
            "Training and validation loss": plots.save(plots.loss_curves(models), out / "loss.png"),
            "RMSE per model and target": plots.save(
                plots.skill_bars(evaluation), out / "skill.png"
            ),
        }
        write_report(
            out,
            evaluation,
            figures=figures,
            models=models,
            title="geocryo evaluation",
            summary=f"Models {', '.join(args.model)} on {args.cube or args.entry}.",
        )
        print(f"wrote {out / 'report.md'}")
    return 0


def _learning_commands(commands) -> None:
    from .forecast import MODES

    demo = commands.add_parser(
        "demo",
        help="the main job: synthesise Alaska, fit two models, score them, write a report",
        description="Synthesise the default Alaska in memory (or open --catalog/--entry), fit "
        "a teacher-forcing and a multimodal model, score them against persistence, seasonal "
        "persistence and climatology, and write OUT/report.md with PNG figures.",
    )
    demo.add_argument(
        "--out", default="geocryo-demo", help="report directory (default: %(default)s)"
    )
    demo.add_argument(
        "--quick", action="store_true", help="a smaller world and shorter fits (a first look)"
    )
    demo.add_argument("--catalog", default=None, help="Intake catalog YAML to take the cube from")
    demo.add_argument("--entry", default=None, help="catalog entry, e.g. synthetic.alaska")
    demo.add_argument("--seed", type=int, default=None, help="seed of the world and the fits")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(run=_demo)

    fit = commands.add_parser(
        "fit",
        help="fit a model on a cube and save it",
        description="Fit an ensemble of ConvLSTM networks (geocryo.fit) and save it to a "
        "directory that `geocryo predict` and `geocryo evaluate` read.",
    )
    _add_input(fit)
    fit.add_argument("--out", required=True, help="model directory to write")
    fit.add_argument("--mode", choices=MODES, default="multimodal", help="(default: %(default)s)")
    fit.add_argument("--epochs", type=int, default=10, help="most epochs (default: %(default)s)")
    fit.add_argument("--ensemble", type=int, default=4, help="members (default: %(default)s)")
    fit.add_argument("--lookback", type=int, default=12, help="input months (default: %(default)s)")
    fit.add_argument("--lead", type=int, default=1, help="lead in months (default: %(default)s)")
    fit.add_argument("--patch", type=int, default=16, help="patch side (default: %(default)s)")
    fit.add_argument("--features", type=int, default=None, help="hidden channels")
    fit.add_argument("--layers", type=int, default=None, help="ConvLSTM layers per encoder")
    fit.add_argument("--batch-size", type=int, default=None, help="samples per batch")
    fit.add_argument("--seed", type=int, default=0, help="root seed (default: %(default)s)")
    fit.add_argument("--overwrite", action="store_true", help="replace an existing model")
    fit.add_argument("--quiet", action="store_true", help="no progress bars")
    fit.set_defaults(run=_fit)

    predict = commands.add_parser(
        "predict",
        help="forecast a cube with a saved model, written as a Zarr store",
        description="Forecast every month of the cube that has a full window; writes the "
        "targets and their ensemble spreads (<target>_std) in physical units.",
    )
    predict.add_argument("--model", required=True, help="model directory from `geocryo fit`")
    _add_input(predict)
    predict.add_argument("--out", required=True, help="prediction Zarr store to write")
    predict.add_argument(
        "--horizon", type=int, default=None, help="months ahead (default: the model's lead)"
    )
    predict.add_argument("--overwrite", action="store_true", help="replace an existing store")
    predict.add_argument("--quiet", action="store_true", help="no progress bars")
    predict.set_defaults(run=_predict)

    evaluate = commands.add_parser(
        "evaluate",
        help="score saved models against baselines, print the table, optionally a report",
        description="Score models and the persistence, seasonal persistence and climatology "
        "baselines at the observed sites and, with a truth, on the complete field.",
    )
    evaluate.add_argument(
        "--model", required=True, action="append", help="model directory (repeat for several)"
    )
    _add_input(evaluate)
    evaluate.add_argument(
        "--truth",
        default=None,
        help="complete truth store (default: the -truth.zarr beside --cube, if any)",
    )
    evaluate.add_argument(
        "--split", default="test", choices=("train", "val", "test"), help="(default: %(default)s)"
    )
    evaluate.add_argument("--out", default=None, help="directory for report.md and figures")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bars")
    evaluate.set_defaults(run=_evaluate)


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
    _learning_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``geocryo`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    tune_allocator()  # before JAX computes anything in this process
    try:
        return args.run(args)
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        parser.exit(2, f"geocryo {args.command}: error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())
