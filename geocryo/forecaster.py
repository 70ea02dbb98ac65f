"""``geocryo.fit`` and the fitted :class:`Forecaster`: the cube in, forecasts with spread out.

>>> model = geocryo.fit(cube, mode="multimodal", ensemble=4, epochs=10)
>>> pred = model.predict(cube, horizon=1)   # alt, ch4_flux, co2_flux and their *_std spreads
>>> model.save("runs/alaska"); model = geocryo.load("runs/alaska")

:func:`fit` splits the record in time, fits the preprocessing plan on the training months only,
streams look-back windows of patches, and trains an ensemble of :class:`~geocryo.models.network.
GeoCryoNet` on every JAX device. :meth:`Forecaster.predict` tiles the grid with patches, averages
where they overlap, and returns the members' mean and spread in physical units; a horizon longer
than the lead rolls out on the model's own predictions.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import xarray as xr
from flax import serialization

from .batching import PatchStream, WindowSpec
from .batching.augment import HistoryDropout
from .cube import MODALITIES, TARGETS, CubeError, validate
from .models.network import GeoCryoNet, count_parameters
from .preprocess import FittedPreprocessor, Outlook, PreprocessConfig, Preprocessor, TimeSplit
from .preprocess._fitting import UNOBSERVED
from .preprocess.plan import SPREAD_SUFFIX
from .train import TrainConfig, Trainer
from .train.linear import fit_skip

__all__ = ["MODES", "FitConfig", "Forecaster", "fit", "load"]

#: Input modes: the in situ target history alone, or with every other modality.
MODES: tuple[str, ...] = ("teacher_forcing", "multimodal")
_FORMAT = "geocryo-forecaster-1"


@dataclass(frozen=True)
class FitConfig:
    """Everything :func:`fit` can be told besides the cube; sane defaults for the synthetic Alaska.

    Parameters
    ----------
    features, layers, kernel, activation, dropout
        The network: hidden channels, ConvLSTM layers per encoder, kernel size, cell activation,
        dropout rate.
    overlap, batch_size
        Cells shared by neighbouring training patches; samples per batch.
    train
        Optimiser, ensemble and early-stopping settings (:class:`~geocryo.train.TrainConfig`);
        its ``ensemble``, ``epochs`` and ``seed`` are set from :func:`fit`'s arguments.
    preprocess
        The preprocessing plan (:class:`~geocryo.preprocess.PreprocessConfig`).
    outlook
        Modalities whose gridded variables also enter (multimodal mode) as their
        training-period climatology of the forecast month (:class:`~geocryo.preprocess.Outlook`):
        the seasonal state the target month usually has. ``()`` for none.
    skip
        Add a linear map of the last input month to the network's output
        (:class:`~geocryo.models.network.GeoCryoNet`).
    history_dropout
        Multimodal mode: the share of training cells whose target history is hidden
        (:class:`~geocryo.batching.augment.HistoryDropout`), so that the network learns to
        forecast the many cells without a site, too. 0 hides none.
    """

    features: int = 16
    layers: int = 2
    kernel: int = 3
    activation: str = "tanh"
    dropout: float = 0.0
    overlap: int = 0
    batch_size: int = 32
    train: TrainConfig = field(default_factory=TrainConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    outlook: tuple[str, ...] = ("process_model", "forcing")
    skip: bool = True
    history_dropout: float = 0.5

    def __post_init__(self) -> None:
        outlook = (self.outlook,) if isinstance(self.outlook, str) else tuple(self.outlook)
        unknown = [m for m in outlook if m not in MODALITIES]
        if unknown:
            raise ValueError(
                f"FitConfig.outlook names {unknown}, which are not modalities; choose from "
                f"{MODALITIES}"
            )
        object.__setattr__(self, "outlook", outlook)
        for name in ("features", "layers", "kernel", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"FitConfig.{name} must be a positive int, got {value!r}")
        if self.kernel % 2 == 0:
            raise ValueError(f"FitConfig.kernel must be odd, got {self.kernel}")
        if not 0 <= self.history_dropout <= 1:
            raise ValueError(
                f"FitConfig.history_dropout must be in [0, 1], got {self.history_dropout}"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"FitConfig.dropout must be in [0, 1), got {self.dropout}")


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
    ensemble: int = 4,
    epochs: int = 10,
    split: TimeSplit | None = None,
    config: FitConfig | None = None,
    seed: int = 0,
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
        Members, the most epochs (early stopping may end sooner), and the root seed.
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
        :meth:`~Forecaster.save`.
    """
    validate(cube)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    names = _targets(cube, targets)
    config = config or FitConfig()
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
    outlook = None
    if mode == "multimodal" and config.outlook:
        outlook = Outlook.fit(prepared, periods["train"], config.outlook)
        prepared = outlook.apply(prepared, lead)
    spec = WindowSpec(lookback, lead, patch, config.overlap, config.batch_size)
    train = PatchStream(prepared, periods["train"], spec, mode, names, shuffle=True, seed=seed)
    val = PatchStream(prepared, periods["val"], spec, mode, names, shuffle=False, seed=seed)
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
    )
    train_config = TrainConfig(
        **{**asdict(config.train), "ensemble": ensemble, "epochs": epochs, "seed": seed}
    )
    initial = None
    if config.skip:
        initial = {"skip": fit_skip(network.groups, train.channels, names, stream)}
    trainer = Trainer(
        network, train_config, total_steps=max(1, epochs * len(train)), initial=initial
    )
    state, history = trainer.fit(
        train, val, checkpoint_dir=checkpoint_dir, resume=resume, progress=progress
    )
    return Forecaster(
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


class Forecaster:
    """A fitted geocryo ensemble: preprocessing plan, network, parameters and history."""

    def __init__(
        self,
        *,
        plan: FittedPreprocessor,
        network: GeoCryoNet,
        params,
        spec: WindowSpec,
        mode: str,
        targets: Sequence[str],
        channels: dict[str, list[str]],
        periods: dict[str, pd.DatetimeIndex],
        history: xr.Dataset,
        config: FitConfig,
        outlook: Outlook | None = None,
        ignored: Sequence[str] = (),
    ) -> None:
        self.plan = plan
        self.outlook = outlook
        self.ignored = list(ignored)
        self.network = network
        self.params = params
        self.spec = spec
        self.mode = mode
        self.targets = list(targets)
        self.channels = {k: list(v) for k, v in channels.items()}
        self.periods = periods
        self.history = history
        self.config = config
        self._apply = jax.jit(
            jax.vmap(lambda p, x: network.apply({"params": p}, x), in_axes=(0, None))
        )

    def __repr__(self) -> str:
        return (
            f"Forecaster(mode={self.mode!r}, targets={self.targets}, members={self.members}, "
            f"parameters={self.parameter_count:,} per member, lookback={self.spec.lookback}, "
            f"lead={self.spec.lead}, patch={self.spec.patch})"
        )

    @property
    def members(self) -> int:
        """Ensemble size."""
        return int(jax.tree.leaves(self.params)[0].shape[0])

    @property
    def parameter_count(self) -> int:
        """Trainable parameters of one member."""
        return count_parameters(self.params) // self.members

    # -- prediction ---------------------------------------------------------------------------

    def _stream(self, prepared: xr.Dataset, months: pd.DatetimeIndex) -> PatchStream:
        stream = PatchStream(
            prepared,
            months,
            self.spec,
            self.mode,
            self.targets,
            shuffle=False,
            require_target=False,
            drop_last=False,
        )
        if stream.channels != self.channels:
            raise CubeError(
                "<dataset>",
                "does not give the inputs the model was trained on: expected channels "
                f"{self.channels}, got {stream.channels}; predict on a cube with the same "
                "variables as the training cube",
            )
        return stream

    def predict(
        self, cube: xr.Dataset, horizon: int | None = None, *, progress: bool = True
    ) -> xr.Dataset:
        """Forecasts for every month that has a full window, on the cube's grid.

        Parameters
        ----------
        cube
            A cube with the variables the model was trained on.
        horizon
            Months between the last input month and the forecast month; a multiple of the
            lead (default: the lead). Beyond the lead, the model rolls out on its own
            predictions: the target history of the last ``horizon - lead`` months of each window
            is the ensemble mean it predicted for them, never an observation.
        progress
            Show a progress bar.

        Returns
        -------
        xr.Dataset
            The targets (member mean) and ``<target>_std`` (member spread) in physical units on
            (time, y, x); NaN where no window fits (the first months of the record).
        """
        lead = self.spec.lead
        horizon = lead if horizon is None else int(horizon)
        if horizon < lead or horizon % lead:
            raise ValueError(
                f"horizon must be a positive multiple of the lead ({lead}), got {horizon}"
            )
        validate(cube)
        prepared = self.plan.transform(cube).drop_vars(self.ignored, errors="ignore")
        if self.outlook is not None:
            prepared = self.outlook.apply(prepared, lead)
        months = pd.DatetimeIndex(cube.indexes["time"])
        stream = self._stream(prepared, months)
        steps = horizon // lead
        mean = spread = None
        for step in range(steps):
            mean, spread = self._predict_field(
                stream, months, cube.sizes, previous=mean, rolled=step * lead, progress=progress
            )
        return self._to_dataset(cube, mean, spread)

    def _predict_field(self, stream, months, sizes, *, previous, rolled, progress):
        """One pass over every window: member mean and spread, standardised, (T, Y, X, K)."""
        from tqdm.auto import tqdm

        shape = (len(months), sizes["y"], sizes["x"], len(self.targets))
        total = np.zeros(shape, np.float32)
        squares = np.zeros(shape, np.float32)
        counts = np.zeros(shape[:-1], np.float32)
        values, indicators = stream.history_channels
        p, lookback = self.spec.patch, self.spec.lookback
        index = {t: i for i, t in enumerate(months.values.astype("datetime64[ns]"))}
        batches = tqdm(
            stream, total=len(stream), desc="predicting", disable=not progress, leave=False
        )
        for batch in batches:
            inputs = dict(batch.inputs)
            target_index = np.array([index[t] for t in batch.time.astype("datetime64[ns]")])
            if rolled and previous is not None:
                inputs["history"] = _roll_history(
                    inputs["history"],
                    previous,
                    target_index,
                    batch.y0,
                    batch.x0,
                    p,
                    lookback,
                    self.spec.lead,
                    rolled,
                    values,
                    indicators,
                )
            members = np.asarray(self._apply(self.params, inputs))
            for b, (t, y0, x0) in enumerate(zip(target_index, batch.y0, batch.x0, strict=True)):
                window = (t, slice(y0, y0 + p), slice(x0, x0 + p))
                total[window] += members[:, b].mean(axis=0)
                squares[window] += members[:, b].var(axis=0)
                counts[window] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / counts[..., None]
            spread = np.sqrt(squares / counts[..., None])
        return mean, spread

    def _to_dataset(self, cube: xr.Dataset, mean: np.ndarray, spread: np.ndarray) -> xr.Dataset:
        coords = {k: v for k, v in cube.coords.items() if set(v.dims) <= {"time", "y", "x"}}
        variables = {}
        for k, name in enumerate(self.targets):
            attrs = {
                key: cube[name].attrs[key]
                for key in ("long_name", "units")
                if key in cube[name].attrs
            }
            variables[name] = (
                ("time", "y", "x"),
                mean[..., k].astype(np.float32),
                attrs | {"units": "1"},
            )
            variables[name + SPREAD_SUFFIX] = (
                ("time", "y", "x"),
                spread[..., k].astype(np.float32),
                {"long_name": f"ensemble spread of {name}"},
            )
        standardised = xr.Dataset(variables, coords=coords)
        out = self.plan.inverse_targets(standardised)
        for name in self.targets:
            out[name].attrs = {
                **cube[name].attrs,
                "modality": "prediction",
                "long_name": f"predicted {cube[name].attrs.get('long_name', name)}",
            }
            out[name].attrs.pop("source", None)
            out[name + SPREAD_SUFFIX].attrs = {
                "units": cube[name].attrs["units"],
                "long_name": f"ensemble spread (standard deviation) of predicted {name}",
            }
        out.attrs = {
            "title": "geocryo forecast",
            "mode": self.mode,
            "lookback": self.spec.lookback,
            "lead": self.spec.lead,
            "members": self.members,
        }
        return out

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the model to a directory (atomically): plan, parameters, settings, history."""
        path = Path(path).expanduser().absolute()
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
        staging = path.with_name(f".{path.name}.writing-{uuid.uuid4().hex[:8]}")
        staging.mkdir(parents=True)
        try:
            self.plan.save(staging / "preprocess")
            (staging / "params.msgpack").write_bytes(serialization.to_bytes(self.params))
            settings = {
                "format": _FORMAT,
                "mode": self.mode,
                "targets": self.targets,
                "channels": self.channels,
                "spec": asdict(self.spec),
                "network": {
                    "groups": list(self.network.groups),
                    "targets": list(self.network.targets),
                    "features": self.network.features,
                    "layers": self.network.layers,
                    "kernel": self.network.kernel,
                    "activation": self.network.activation,
                    "dropout": self.network.dropout,
                    "skip": self.network.skip,
                },
                "periods": {k: [str(v[0]), str(v[-1])] for k, v in self.periods.items()},
                "members": self.members,
                "config": asdict(self.config),
                "outlook": None if self.outlook is None else self.outlook.attrs,
                "ignored": self.ignored,
            }
            if self.outlook is not None:
                self.outlook.save(staging / "outlook.npz")
            (staging / "model.json").write_text(json.dumps(settings, indent=2))
            self.history.to_netcdf(staging / "history.nc", engine="scipy")
            if path.exists():
                shutil.rmtree(path)
            os.replace(staging, path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return path


def load(path: str | os.PathLike) -> Forecaster:
    """Read a model written by :meth:`Forecaster.save`."""
    path = Path(path).expanduser()
    settings_file = path / "model.json"
    if not settings_file.exists():
        raise FileNotFoundError(f"{path} is not a saved geocryo model (no model.json)")
    settings = json.loads(settings_file.read_text())
    if settings.get("format") != _FORMAT:
        raise ValueError(
            f"{path} holds a model format this geocryo cannot read: {settings.get('format')!r}"
        )
    network = GeoCryoNet(
        **{
            "skip": False,  # models saved before the linear skip existed had none
            **settings["network"],
            "groups": tuple(settings["network"]["groups"]),
            "targets": tuple(settings["network"]["targets"]),
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
            **saved,
            "train": TrainConfig(**saved["train"]),
            "preprocess": PreprocessConfig(
                **{
                    **saved["preprocess"],
                    "variables": None if variables is None else tuple(variables),
                }
            ),
        }
    )
    return Forecaster(
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


def _roll_history(
    history, previous, target_index, y0, x0, patch, lookback, lead, rolled, values, indicators
):
    """Replace the last ``rolled`` months of target history by earlier predictions.

    Every window lies inside the record, so each replaced month has a (possibly NaN) prediction;
    NaN becomes 0 with its missing indicator set, as in the batches.
    """
    history = history.copy()
    for b, (t, yy, xx) in enumerate(zip(target_index, y0, x0, strict=True)):
        for j in range(min(rolled, lookback)):
            predicted = previous[t - lead - j, yy : yy + patch, xx : xx + patch]
            missing = np.isnan(predicted)
            step = history[b, lookback - 1 - j]  # a view: (p, p, channels)
            step[..., values] = np.where(missing, 0.0, predicted)
            step[..., indicators] = missing
    return history
