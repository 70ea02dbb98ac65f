"""Which variables feed which input group, as which channels, and how raw values become them.

A *layout* is read from the cube's metadata only. It turns the raw arrays of a block of the cube
(one array per variable, NaN where missing) into *prepared* arrays, one pair per group: the
time-varying channels ``(T, Y, X, C_dyn)`` and the static ones ``(Y, X, C_static)``, float32,
channels last, NaN replaced by 0 with a missing-indicator channel beside the variables that can
be missing. Patches are cut from prepared arrays by plain slicing; static channels are repeated
over the look-back months as they are cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..cube import MODALITIES, TARGETS

__all__ = ["ANCHOR_SUFFIX", "HISTORY", "MISSING", "MODES", "Layout", "Prepared"]

#: Input modes: the model sees only the target history, or the history and every modality.
MODES: tuple[str, ...] = ("teacher_forcing", "multimodal")

#: Name of the input group that holds the target variables over the look-back months.
HISTORY = "history"

#: Suffix of a missing-indicator channel.
MISSING = "_missing"

#: Suffix of a target's training-period climatology in the ``"history"`` group (the
#: :data:`~geocryo.preprocess.outlook.OUTLOOK_SUFFIX` of the outlook that holds it).
ANCHOR_SUFFIX = "_outlook"

#: (time-varying channels (T, Y, X, C) or None, static channels (Y, X, C) or None) per group.
Prepared = dict[str, tuple[np.ndarray | None, np.ndarray | None]]

_CUBE_DIMS = ("time", "y", "x")


@dataclass(frozen=True)
class _Variable:
    name: str
    timed: bool
    extra: tuple[str, ...]  # dims that become channels
    width: int  # channels of values
    indicate: bool  # followed by one missing-indicator channel
    offset: int  # first channel within its part (time-varying or static) of the group

    @property
    def dims(self) -> tuple[str, ...]:
        """The order in which the variable is read: (time,) y, x, extra dims."""
        return (("time",) if self.timed else ()) + ("y", "x", *self.extra)


@dataclass(frozen=True)
class _Group:
    timed: tuple[_Variable, ...]
    static: tuple[_Variable, ...]
    n_timed: int
    n_static: int
    names: tuple[str, ...]


def _names(var: _Variable, ds: xr.Dataset) -> list[str]:
    if not var.extra:
        names = [var.name]
    else:
        labels = np.stack(
            np.meshgrid(
                *[ds[d].values if d in ds.coords else np.arange(ds.sizes[d]) for d in var.extra],
                indexing="ij",
            ),
            axis=-1,
        ).reshape(-1, len(var.extra))
        names = [var.name + "_" + "_".join(str(v) for v in label) for label in labels]
    return names + ([var.name + MISSING] if var.indicate else [])


class Layout:
    """The input groups and channels of a stream, from the cube's metadata (nothing is read).

    Parameters
    ----------
    ds
        The cube (raw or prepared): dims ``time``, ``y``, ``x``; every variable has a
        ``modality`` attribute.
    targets
        Target variables, on ``(time, y, x)``. They form the ``"history"`` group (each followed
        by its missing indicator) and are excluded from the features.
    mode
        ``"teacher_forcing"`` (history only) or ``"multimodal"`` (history, then one group per
        modality of the features, in the order of :data:`geocryo.cube.MODALITIES`, each with
        its variables in name order).
    indicate_missing
        Modalities whose variables get a missing-indicator channel (1 where the value is
        missing; for a variable with an extra dim, where any of its channels is missing).

    A target's training-period climatology, ``<target>_outlook`` (see
    :class:`~geocryo.preprocess.Outlook`), joins the ``"history"`` group after the targets, with
    its missing indicator, in either mode: like the history, it exists only where the target
    was observed.
    """

    def __init__(
        self,
        ds: xr.Dataset,
        targets: Sequence[str],
        mode: str,
        indicate_missing: Sequence[str],
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        for modality in indicate_missing:
            if modality not in MODALITIES:
                raise ValueError(
                    f"indicate_missing: {modality!r} is not a modality; choose from {MODALITIES}"
                )
        for name in targets:
            if name not in ds.data_vars:
                raise ValueError(
                    f"targets: {name!r} is not a variable of the cube; it has "
                    f"{', '.join(n for n in TARGETS if n in ds.data_vars) or 'no standard target'}"
                )
            if set(ds[name].dims) != set(_CUBE_DIMS):
                raise ValueError(
                    f"targets: {name!r} must have dims {_CUBE_DIMS}, got {ds[name].dims}"
                )
        if not targets:
            raise ValueError(
                "no targets: the cube has none of alt, ch4_flux, co2_flux; pass targets=[...]"
            )
        self.targets = tuple(targets)
        self.mode = mode
        self.anchors = tuple(
            name + ANCHOR_SUFFIX for name in targets if name + ANCHOR_SUFFIX in ds.data_vars
        )
        members: dict[str, list[str]] = {HISTORY: [*targets, *self.anchors]}
        if mode == "multimodal":
            for name, var in ds.data_vars.items():
                if name in self.targets or name in self.anchors:
                    continue
                modality = var.attrs.get("modality")
                if modality not in MODALITIES:
                    raise ValueError(
                        f"{name!r} has modality {modality!r}; set its 'modality' attribute to "
                        f"one of {MODALITIES} (or drop the variable) to use mode='multimodal'"
                    )
                members.setdefault(modality, []).append(str(name))
        # Features in name order: a store's variables come back in any order (Zarr v3 lists a
        # group's members as the file system does), and the channels must not follow it.
        for group in members:
            if group != HISTORY:
                members[group].sort()
        order = [HISTORY, *MODALITIES]
        self.groups: dict[str, _Group] = {}
        for group in sorted(members, key=order.index):
            self.groups[group] = self._group(ds, members[group], group, indicate_missing)

    @staticmethod
    def _group(ds: xr.Dataset, names: list[str], group: str, indicate: Sequence[str]) -> _Group:
        parts: dict[bool, list[_Variable]] = {True: [], False: []}
        offsets = {True: 0, False: 0}
        for name in names:
            var = ds[name]
            if not {"y", "x"} <= set(var.dims):
                raise ValueError(f"{name!r} must have dims 'y' and 'x', got {var.dims}")
            timed = "time" in var.dims
            extra = tuple(str(d) for d in var.dims if d not in _CUBE_DIMS)
            width = int(np.prod([var.sizes[d] for d in extra], dtype=int))
            flag = group == HISTORY or var.attrs.get("modality") in indicate
            parts[timed].append(_Variable(name, timed, extra, width, flag, offsets[timed]))
            offsets[timed] += width + flag
        variables = (*parts[True], *parts[False])
        names_ = tuple(n for v in variables for n in _names(v, ds))
        return _Group(
            tuple(parts[True]), tuple(parts[False]), offsets[True], offsets[False], names_
        )

    @property
    def channels(self) -> dict[str, list[str]]:
        """Input group -> channel names, in the order of the last axis of the batch arrays."""
        return {group: list(g.names) for group, g in self.groups.items()}

    @property
    def variables(self) -> list[_Variable]:
        """Every variable the stream reads, once."""
        return [v for g in self.groups.values() for v in (*g.timed, *g.static)]

    def bytes_per_cell(self) -> tuple[int, int]:
        """Prepared bytes per cell and month (time-varying channels), and per cell (static)."""
        timed = sum(g.n_timed for g in self.groups.values())
        static = sum(g.n_static for g in self.groups.values())
        return 4 * timed, 4 * static

    def prepare(self, raw: dict[str, np.ndarray]) -> Prepared:
        """Raw arrays of one block (in :attr:`_Variable.dims` order) -> prepared arrays.

        Missing values become 0 and their indicator 1; observed values are copied exactly (cast
        to float32) with indicator 0. The raw arrays are not modified.
        """
        prepared: Prepared = {}
        for group, g in self.groups.items():
            timed = static = None
            if g.timed:
                shape = raw[g.timed[0].name].shape[:3]
                timed = np.empty((*shape, g.n_timed), dtype=np.float32)
                for var in g.timed:
                    _fill(timed, var, raw[var.name])
            if g.static:
                shape = raw[g.static[0].name].shape[:2]
                static = np.empty((*shape, g.n_static), dtype=np.float32)
                for var in g.static:
                    _fill(static, var, raw[var.name])
            prepared[group] = (timed, static)
        return prepared

    def target_channels(self) -> tuple[list[int], list[int]]:
        """Positions of the targets' values and of their missing indicators in ``history``."""
        values = [var.offset for var in self.groups[HISTORY].timed if var.name in self.targets]
        return values, [v + 1 for v in values]

    def anchor_channels(self) -> list[int]:
        """Per target, the position in ``history`` of its climatology (its indicator follows).

        -1 for a target without one; the target's own value is at :meth:`target_channels`.
        """
        at = {var.name: var.offset for var in self.groups[HISTORY].timed}
        return [at.get(name + ANCHOR_SUFFIX, -1) for name in self.targets]


def _fill(out: np.ndarray, var: _Variable, values: np.ndarray) -> None:
    """Write one variable's channels (and its indicator) into a prepared array, NaN -> 0."""
    lead = out.shape[:-1]
    values = values.reshape(*lead, var.width)
    target = out[..., var.offset : var.offset + var.width]
    missing = np.isnan(values)
    np.copyto(target, values, casting="same_kind")
    np.copyto(target, 0.0, where=missing)
    if var.indicate:
        out[..., var.offset + var.width] = (
            missing.any(axis=-1) if var.width > 1 else missing[..., 0]
        )
