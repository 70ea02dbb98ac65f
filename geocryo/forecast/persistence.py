"""Saving and loading a :class:`~geocryo.forecast.Forecaster`: one directory, written atomically.

A saved model is a directory: ``model.json`` (format, settings, channels, periods),
``params.msgpack`` (every member's parameters), ``preprocess/`` (the fitted plan),
``history.nc`` (the loss curves), ``outlook.npz`` for a model with an outlook (the
climatologies it reads) and ``calibration.npz`` for a calibrated one (its noise terms).
It is written through :mod:`geocryo.io.atomic`: a model saved over an old one replaces it whole
or not at all, whenever the writing process is stopped.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, replace
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import xarray as xr
from flax import serialization

from ..batching import WindowSpec
from ..cube import TARGETS
from ..io.atomic import atomic_write, restore
from ..models.network import GeoCryoNet
from ..preprocess import FittedPreprocessor, Outlook, PreprocessConfig
from ..train import TrainConfig
from .calibration import Calibration
from .config import FitConfig
from .forecaster import Forecaster

__all__ = ["FORMAT", "load", "save"]

#: The ``format`` of ``model.json``.
FORMAT = "geocryo-forecaster-1"
_SETTINGS = "model.json"
_CALIBRATION = "calibration.npz"


def _is_model(path: Path) -> bool:
    return (path / _SETTINGS).is_file()


def save(model: Forecaster, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``model`` to the directory ``path``, atomically.

    Parameters
    ----------
    model
        A fitted model.
    path
        The directory to write.
    overwrite
        Replace a model saved there before (only a saved model: any other directory is refused).

    Returns
    -------
    pathlib.Path
        The directory written.
    """
    network = model.network
    settings = {
        "format": FORMAT,
        "mode": model.mode,
        "targets": model.targets,
        "channels": model.channels,
        "spec": asdict(model.spec),
        "network": {
            "groups": list(network.groups),
            "targets": list(network.targets),
            "features": network.features,
            "layers": network.layers,
            "kernel": network.kernel,
            "activation": network.activation,
            "dropout": network.dropout,
            "skip": network.skip,
            "anchors": [list(pair) for pair in network.anchors],
            "lead": network.lead,
            "lower": list(network.lower),
            "sharpness": network.sharpness,
        },
        "periods": {k: [str(v[0]), str(v[-1])] for k, v in model.periods.items()},
        "members": model.members,
        "config": asdict(model.config),
        "outlook": None if model.outlook is None else model.outlook.attrs,
        "ignored": model.ignored,
    }
    with atomic_write(
        path, overwrite=overwrite, replaceable=_is_model, what="a saved geocryo model"
    ) as staging:
        model.plan.save(staging / "preprocess")
        (staging / "params.msgpack").write_bytes(serialization.to_bytes(model.params))
        if model.outlook is not None:
            model.outlook.save(staging / "outlook.npz")
        if model.calibration is not None:
            np.savez(staging / _CALIBRATION, **model.calibration.to_dict())
        model.history.to_netcdf(staging / "history.nc", engine="scipy")
        (staging / _SETTINGS).write_text(json.dumps(settings, indent=2))
    return Path(path).expanduser().absolute()


def load(path: str | os.PathLike) -> Forecaster:
    """Read a model written by :meth:`Forecaster.save`."""
    path = Path(path).expanduser()
    restore(path)  # a save killed while swapping left the model beside its place
    settings_file = path / _SETTINGS
    if not settings_file.exists():
        raise FileNotFoundError(f"{path} is not a saved geocryo model (no {_SETTINGS})")
    settings = json.loads(settings_file.read_text())
    if settings.get("format") != FORMAT:
        raise ValueError(
            f"{path} holds a model format this geocryo cannot read: {settings.get('format')!r}"
        )
    network = GeoCryoNet(
        **{
            "skip": False,  # models saved before the linear skip existed had none
            **settings["network"],
            "groups": tuple(settings["network"]["groups"]),
            "targets": tuple(settings["network"]["targets"]),
            "anchors": tuple(tuple(pair) for pair in settings["network"].get("anchors", ())),
            "lower": tuple(settings["network"].get("lower", ())),
        }
    )
    spec = WindowSpec(**settings["spec"])
    plan = FittedPreprocessor.load(path / "preprocess")
    example = _example_inputs(settings["channels"], spec, batch=1)
    like = jax.vmap(lambda key: network.init(key, example)["params"])(
        jax.random.split(jax.random.PRNGKey(0), settings["members"])
    )
    params = serialization.from_bytes(like, (path / "params.msgpack").read_bytes())
    periods = {k: pd.date_range(a, b, freq="MS") for k, (a, b) in settings["periods"].items()}
    with xr.open_dataset(path / "history.nc", engine="scipy") as history:
        history = history.load()
    saved = settings["config"]
    variables = saved["preprocess"].get("variables")
    outlook = None
    if settings.get("outlook") is not None:
        outlook = Outlook.load(path / "outlook.npz", settings["outlook"])
    config = FitConfig(
        **{
            "skip": False,  # what models saved before these settings existed were fitted with
            "history_dropout": 0.0,
            "climatology": False,
            "drivers": (),
            "calibrate": False,
            "bounds": dict.fromkeys(TARGETS),
            **saved,
            # Models saved before fit stored its settings in the config held the members in
            # "members" alone.
            "train": replace(TrainConfig(**saved["train"]), ensemble=settings["members"]),
            "preprocess": PreprocessConfig(
                **{
                    **saved["preprocess"],
                    "variables": None if variables is None else tuple(variables),
                }
            ),
        }
    )
    calibration = None
    if (path / _CALIBRATION).exists():
        with np.load(path / _CALIBRATION) as arrays:
            calibration = Calibration.from_dict(arrays)
    return Forecaster(
        calibration=calibration,
        plan=plan,
        network=network,
        params=params,
        spec=spec,
        mode=settings["mode"],
        targets=settings["targets"],
        channels=settings["channels"],
        periods=periods,
        history=history,
        config=config,
        outlook=outlook,
        ignored=settings.get("ignored", []),
    )


def _example_inputs(channels: dict[str, list[str]], spec: WindowSpec, batch: int) -> dict:
    shape = (batch, spec.lookback, spec.patch, spec.patch)
    return {group: np.zeros((*shape, len(names)), np.float32) for group, names in channels.items()}
