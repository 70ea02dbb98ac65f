""":func:`fit`: a cube in, a fitted :class:`~geocryo.forecast.Forecaster` out.

:func:`fit` splits the record in time, fits the preprocessing plan on the training months only,
streams look-back windows of patches, and trains an ensemble of
:class:`~geocryo.models.network.GeoCryoNet` on every JAX device.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import replace

import jax
import xarray as xr

from ..batching import PatchStream, WindowSpec
from ..batching.augment import HistoryDropout, MaskCells
from ..cube import TARGETS, CubeError, validate
from ..models.network import GeoCryoNet
from ..preprocess import Outlook, Preprocessor, TimeSplit, with_drivers
from ..preprocess._fitting import UNOBSERVED
from ..train import Trainer
from ..train.linear import fit_departure, fit_skip
from .calibration import fit_calibration, hold_out
from .config import MODES, FitConfig
from .forecaster import Forecaster

__all__ = ["fit", "settle_config"]

#: How far above a target's bound (relative, in standardised units) the network's floor sits.
BOUND_MARGIN = 1e-5

#: The settings that :func:`fit` takes as keywords and :class:`~geocryo.train.TrainConfig` holds.
SHORTCUTS: tuple[str, ...] = ("ensemble", "epochs", "seed")


def settle_config(config: FitConfig | None = None, **shortcuts: int | None) -> FitConfig:
    """The one configuration of a fit: ``config`` with the keywords of :data:`SHORTCUTS` in it.

    A keyword sets a field the config leaves at ``None``; a keyword and a config field that set
    the same setting to different values are an error, never a silent choice. Fields still
    ``None`` take their defaults (:data:`geocryo.train.config.DEFAULTS`).

    Parameters
    ----------
    config
        The caller's :class:`FitConfig`, or None for the defaults.
    **shortcuts
        ``ensemble``, ``epochs``, ``seed`` as passed to :func:`fit`.

    Returns
    -------
    FitConfig
        Whose ``train`` holds every setting the fit runs with.
    """
    unknown = sorted(set(shortcuts) - set(SHORTCUTS))
    if unknown:
        raise TypeError(f"settle_config() got unexpected settings {unknown}")
    config = FitConfig() if config is None else config
    if not isinstance(config, FitConfig):
        raise TypeError(f"config must be a geocryo.FitConfig, got {type(config).__name__}")
    values = {name: value for name, value in shortcuts.items() if value is not None}
    clash = {n: v for n, v in values.items() if getattr(config.train, n) not in (None, v)}
    if clash:
        said = ", ".join(f"{n}={v!r}" for n, v in clash.items())
        held = ", ".join(f"config.train.{n}={getattr(config.train, n)!r}" for n in clash)
        raise ValueError(
            f"fit({said}) and {held} both set {', '.join(clash)}, to different values, and "
            "neither wins: give each setting in one place, the keyword or the config"
        )
    return replace(config, train=replace(config.train, **values).settled())


def _targets(cube: xr.Dataset, targets: Sequence[str] | None) -> list[str]:
    if targets is None:
        found = [name for name in TARGETS if name in cube.data_vars]
        if not found:
            raise CubeError(
                "<dataset>",
                f"has none of the targets {', '.join(TARGETS)}; a cube to learn from needs at "
                "least one of them (with units as in geocryo.TARGETS)",
            )
        return found
    targets = [targets] if isinstance(targets, str) else list(targets)
    for name in targets:
        if name not in cube.data_vars:
            raise CubeError(name, "is asked for as a target but is not in the cube")
    return targets


def fit(
    cube: xr.Dataset,
    targets: Sequence[str] | None = None,
    mode: str = "multimodal",
    lookback: int = 12,
    lead: int = 1,
    patch: int = 16,
    ensemble: int | None = None,
    epochs: int | None = None,
    split: TimeSplit | None = None,
    config: FitConfig | None = None,
    seed: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
) -> Forecaster:
    """Learn the targets of ``cube`` with an ensemble of ConvLSTM networks.

    Parameters
    ----------
    cube
        A valid cube (:func:`geocryo.validate`), lazy or in memory.
    targets
        Variables to learn; ``None``: whichever of ``alt``, ``ch4_flux``, ``co2_flux`` it has.
    mode
        ``"teacher_forcing"`` (the in situ target history only) or ``"multimodal"`` (target
        history plus every modality).
    lookback, lead
        Months of inputs, and how many months after the last of them the target lies.
    patch
        Side of the square patches, in cells.
    ensemble, epochs, seed
        Members, the most epochs (early stopping may end sooner), and the root seed: the
        fields of ``config.train`` of the same names (defaults 4, 10 and 0), given here for
        short. A keyword that disagrees with a ``config`` passed beside it is an error.
    split
        Chronological train/validation/test split (default :class:`TimeSplit` 70/15/15, with a
        look-back gap between parts).
    config
        Network, optimiser and preprocessing settings (:class:`FitConfig`).
    checkpoint_dir, resume
        Where to checkpoint after every epoch, and whether to continue a run found there.
    progress
        Show progress bars.

    Returns
    -------
    Forecaster
        The fitted model: :meth:`~Forecaster.predict`, :attr:`~Forecaster.history`,
        :meth:`~Forecaster.save`; its :attr:`~Forecaster.config` holds every setting it was
        fitted with.
    """
    validate(cube)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    config = settle_config(config, ensemble=ensemble, epochs=epochs, seed=seed)
    seed = config.train.seed
    names = _targets(cube, targets)
    split = split or TimeSplit()
    periods = split.periods(cube.time, lookback=lookback, horizon=lead)
    plan = Preprocessor(config.preprocess).fit(cube, periods["train"], progress=progress)
    stats = plan.statistics
    unobserved = [
        str(v) for v in stats.variable.values[stats.fallback.values == UNOBSERVED] if v not in names
    ]
    if unobserved:
        warnings.warn(
            f"fit: leaving out {unobserved}, which have no value in the training period: the "
            "network could learn nothing from them, and their first values (in later months) "
            "would reach it unscaled",
            UserWarning,
            stacklevel=2,
        )
    prepared = plan.transform(cube).drop_vars(unobserved)
    lower = tuple(_lower_bound(plan, config, name) for name in names)
    outlook = None
    modalities = config.outlook if mode == "multimodal" else ()
    anchored = names if config.climatology else ()
    if modalities or anchored:
        outlook = Outlook.fit(prepared, periods["train"], modalities, targets=anchored)
        prepared = outlook.apply(prepared, lead)
        outlook = outlook if outlook.variables else None
    if mode == "multimodal" and config.drivers:
        prepared = with_drivers(prepared, config.drivers, lead)
    spec = WindowSpec(lookback, lead, patch, config.overlap, config.batch_size)
    train = PatchStream(prepared, periods["train"], spec, mode, names, shuffle=True, seed=seed)
    val = PatchStream(prepared, periods["val"], spec, mode, names, shuffle=False, seed=seed)
    held_out = None
    if config.calibrate:
        held_out = hold_out(cube[names], periods["train"], config.calibration_sites, seed)
    if held_out is not None:
        train, val = MaskCells(train, held_out), MaskCells(val, held_out)
    stream = train
    if mode == "multimodal" and config.history_dropout > 0:
        train = HistoryDropout(train, config.history_dropout, seed=seed)
    network = GeoCryoNet(
        groups=tuple(train.channels),
        targets=tuple(names),
        features=config.features,
        layers=config.layers,
        kernel=config.kernel,
        activation=config.activation,
        dropout=config.dropout,
        skip=config.skip,
        anchors=tuple(
            (value, clim) if clim >= 0 else (-1, -1)
            for value, clim in zip(stream.history_channels[0], stream.anchor_channels, strict=True)
        ),
        lead=lead,
        lower=lower,
    )
    initial = {}
    if config.skip:
        initial["skip"] = fit_skip(network.groups, train.channels, names, stream)
    if any(clim >= 0 for _, clim in network.anchors):
        initial["departure"] = fit_departure(network.groups, network.anchors, lead, names, stream)
    trainer = Trainer(
        network,
        config.train,
        total_steps=max(1, config.train.epochs * len(train)),
        initial=initial or None,
    )
    state, history = trainer.fit(
        train, val, checkpoint_dir=checkpoint_dir, resume=resume, progress=progress
    )
    model = Forecaster(
        plan=plan,
        network=network,
        params=jax.device_get(state.params),
        spec=spec,
        mode=mode,
        targets=names,
        channels=train.channels,
        periods=periods,
        history=history,
        config=config,
        outlook=outlook,
        ignored=unobserved,
    )
    if config.calibrate:
        model.calibration = fit_calibration(model, cube, periods, held_out, progress=progress)
    return model


def _lower_bound(plan, config: FitConfig, name: str) -> float | None:
    """``name``'s lower bound in the plan's standardised units, or None."""
    bound = config.lower_bound(name)
    if bound is None:
        return None
    z = plan.standardise(name, bound)
    # A hair above the bound: float32 rounding of value * std + mean must not land below it.
    return z + BOUND_MARGIN * (1 + abs(z))
