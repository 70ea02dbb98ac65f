"""Batches of supervised patches from a cube: the fast slab stream and the xbatcher reference.

:class:`PatchStream` turns a cube and the months of one part (train, validation or test) into
batches of numpy arrays for the model. Two engines build identical batches:

- ``"slab"`` (default, fast): reads whole chunk-aligned slabs (every month of the part for a
  block of cells, plus a halo so that patches crossing the block's edge are complete), one
  ``dask.compute`` per slab, on a background thread while the previous slab is being cut into
  patches with numpy. Memory stays at a few slabs whatever the size of the cube.
- ``"xbatcher"`` (reference): one :class:`xbatcher.BatchGenerator` window per sample, loaded on
  its own. Slow over dask-backed data (tens of patches per second), but it is the plain way.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import dask
import numpy as np
import pandas as pd
import xarray as xr

from .._checks import integer
from ..cube import TARGETS
from .channels import HISTORY, Layout, Prepared
from .windows import WindowSpec, epoch_order, month_runs, origins, plan_slabs

__all__ = ["ENGINES", "Batch", "PatchStream"]

#: How a stream reads the cube: whole slabs (fast) or one xbatcher window per sample.
ENGINES: tuple[str, ...] = ("slab", "xbatcher")

#: Block size (cells) for cubes that are not dask-backed, where no chunks say how to cut them.
DEFAULT_BLOCK = 128

#: The default windows: 12 months of look-back, next month's target, 16 x 16 cells, batches of 32.
DEFAULT_SPEC = WindowSpec()

#: Name prefix of the threads that read slabs ahead.
THREAD_PREFIX = "geocryo-slab"


class Batch(NamedTuple):
    """One batch of samples: numpy float32 arrays, channels last, ready for JAX.

    Attributes
    ----------
    inputs
        Input group -> ``(B, L, p, p, C_group)``; channel names in :attr:`PatchStream.channels`.
    targets
        ``(B, p, p, K)``: the targets at month ``t + lead``, 0 where not observed.
    mask
        ``(B, p, p, K)``: 1.0 exactly where a target was observed at ``t + lead``, else 0.0.
    time
        ``(B,)`` datetime64: the target months.
    y0, x0
        ``(B,)``: cell indices of the patches' first row and column.
    """

    inputs: dict[str, np.ndarray]
    targets: np.ndarray
    mask: np.ndarray
    time: np.ndarray
    y0: np.ndarray
    x0: np.ndarray


@dataclass(frozen=True)
class _Index:
    last: np.ndarray  # cube time index of each sample's last input month
    iy: np.ndarray  # position in the y origins
    ix: np.ndarray
    slab: np.ndarray
    by_slab: list[np.ndarray]  # positions of each slab's samples


class PatchStream:
    """Batches of ``(L months of inputs, target at t + lead, mask)`` patches from one part.

    Building a stream reads nothing. A sample is a last input month ``t`` and a patch origin;
    its input months ``t - L + 1 .. t`` and its target month ``t + lead`` all lie in ``months``,
    and nothing outside ``months`` is read into a batch.

    Parameters
    ----------
    ds
        A cube, raw or prepared by a fitted preprocessing plan; numpy- or dask-backed.
    months
        The months of one part, e.g. ``TimeSplit(...).periods(time)["train"]``; they must be on
        the cube's time axis. Gaps split the part into runs, and no sample spans a gap.
    spec
        Look-back, lead, patch size, overlap and batch size.
    mode
        ``"teacher_forcing"``: only the ``"history"`` group (the targets over the look-back,
        each with a missing indicator). ``"multimodal"``: also one group per modality of the
        features, by their ``modality`` attribute.
    targets
        Target variables; by default whichever of ``alt``, ``ch4_flux``, ``co2_flux`` the cube
        has.
    shuffle, seed
        Shuffle the samples, deterministically from ``seed``; see :meth:`epoch`.
    require_target
        Keep only samples whose target patch has at least one observed target. Deciding this
        reads the targets' observation mask once (one pass over the targets of the part).
    engine
        ``"slab"`` (fast) or ``"xbatcher"`` (reference); both give identical batches.
    prefetch
        Slabs read ahead on a background thread (0 reads in the consumer's thread).
    max_slab_bytes
        Bound on one prepared slab; memory holds about ``prefetch + 2`` of them.
    drop_last
        Drop the last batch when it is not full.
    indicate_missing
        Modalities whose features get a missing-indicator channel.

    Examples
    --------
    >>> cube, _ = geocryo.synthetic.alaska(ny=32, nx=32)
    >>> parts = TimeSplit().periods(cube, lookback=12)
    >>> train = PatchStream(cube, parts["train"], WindowSpec(patch=8), seed=0)
    >>> for epoch in range(3):
    ...     for batch in train.epoch(epoch):
    ...         state, metrics = train_step(state, batch, key)
    """

    def __init__(
        self,
        ds: xr.Dataset,
        months: pd.DatetimeIndex,
        spec: WindowSpec = DEFAULT_SPEC,
        mode: str = "multimodal",
        targets: Sequence[str] | None = None,
        shuffle: bool = True,
        seed: int = 0,
        require_target: bool = True,
        engine: str = "slab",
        prefetch: int = 1,
        max_slab_bytes: int = 256 * 2**20,
        drop_last: bool = False,
        indicate_missing: Sequence[str] = ("in_situ", "remote_sensing"),
    ) -> None:
        _check_cube(ds)
        if not isinstance(spec, WindowSpec):
            raise TypeError(f"spec must be a WindowSpec, got {type(spec).__name__}")
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        prefetch = integer("prefetch", prefetch, low=0)
        max_slab_bytes = integer("max_slab_bytes", max_slab_bytes, low=1)
        seed = integer("seed", seed)
        if isinstance(indicate_missing, str):
            indicate_missing = (indicate_missing,)
        if targets is None:
            targets = [name for name in TARGETS if name in ds.data_vars]
        elif isinstance(targets, str):
            targets = [targets]
        self._ds = ds
        self._spec = spec
        self._layout = Layout(ds, list(targets), mode, tuple(indicate_missing))
        self._time = pd.DatetimeIndex(ds.indexes["time"])
        self._runs = month_runs(self._time, pd.DatetimeIndex(months))
        longest = max(stop - start for start, stop in self._runs)
        if longest < spec.span:
            raise ValueError(
                f"months: the longest run of consecutive months is {longest}, but a sample needs "
                f"lookback + lead = {spec.span}; pass a longer part or a shorter WindowSpec"
            )
        self._oy = origins(ds.sizes["y"], spec.patch, spec.stride, "y")
        self._ox = origins(ds.sizes["x"], spec.patch, spec.stride, "x")
        per_month, per_cell = self._layout.bytes_per_cell()
        self._slabs = plan_slabs(
            self._runs,
            (ds.sizes["y"], ds.sizes["x"]),
            self._oy,
            self._ox,
            self._chunks(),
            spec,
            per_month,
            per_cell,
            int(max_slab_bytes),
        )
        self.mode = mode
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.require_target = bool(require_target)
        self.engine = engine
        self.prefetch = int(prefetch)
        self.max_slab_bytes = int(max_slab_bytes)
        self.drop_last = bool(drop_last)
        self._index: _Index | None = None

    # -- what the stream holds (no data read) ---------------------------------------------------

    @property
    def spec(self) -> WindowSpec:
        """The window spec."""
        return self._spec

    @property
    def targets(self) -> list[str]:
        """Target variables, in the order of the last axis of ``Batch.targets``."""
        return list(self._layout.targets)

    @property
    def channels(self) -> dict[str, list[str]]:
        """Input group -> channel names, in the order of the last axis of ``Batch.inputs[group]``.

        ``"history"`` holds each target then its ``<name>_missing`` indicator; in multimodal
        mode one group per modality follows (``"remote_sensing"``, ``"process_model"``,
        ``"forcing"``, ``"static"``, ...), time-varying variables first, then static ones
        (repeated over the look-back months), a variable with an extra dim as one channel per
        label (``hyperspectral_reflectance_0``, ...).
        """
        return self._layout.channels

    @property
    def history_channels(self) -> tuple[list[int], list[int]]:
        """Positions in ``"history"`` of each target's value and of its missing indicator."""
        return self._layout.target_channels()

    @property
    def anchor_channels(self) -> list[int]:
        """Per target, the position in ``"history"`` of its training-period climatology.

        Its missing indicator follows it; -1 for a target whose climatology is not an input.
        """
        return self._layout.anchor_channels()

    @property
    def site_channels(self) -> tuple[list[int], list[int]]:
        """Positions in ``"history"`` of everything a cell without a site lacks, and of their
        missing indicators: each target's value and, where it is an input, its climatology."""
        values, missing = self.history_channels
        anchors = [a for a in self.anchor_channels if a >= 0]
        return values + anchors, missing + [a + 1 for a in anchors]

    def _chunks(self) -> tuple[int, int]:
        var = self._ds[self._layout.targets[0]]
        if var.chunks is None:
            return DEFAULT_BLOCK, DEFAULT_BLOCK
        sizes = var.chunksizes
        return int(sizes["y"][0]), int(sizes["x"][0])

    def __repr__(self) -> str:
        s = self._spec
        return (
            f"PatchStream(mode={self.mode!r}, engine={self.engine!r}, L={s.lookback}, "
            f"lead={s.lead}, patch={s.patch}, overlap={s.overlap}, batch_size={s.batch_size}, "
            f"{len(self._slabs)} slabs, groups {list(self.channels)})"
        )

    # -- the sample index -----------------------------------------------------------------------

    def _build_index(self) -> _Index:
        if self._index is not None:
            return self._index
        parts = []
        for k, slab in enumerate(self._slabs):
            grids = np.meshgrid(
                np.arange(*slab.last), np.arange(*slab.oy), np.arange(*slab.ox), indexing="ij"
            )
            parts.append([g.ravel() for g in grids] + [np.full(grids[0].size, k)])
        last, iy, ix, slab = (
            np.concatenate(column).astype(np.int64) for column in zip(*parts, strict=True)
        )
        if self.require_target:
            keep = self._observed()[last + self._spec.lead, iy, ix]
            if not keep.any():
                raise ValueError(
                    "no sample of this part has an observed target; pass require_target=False "
                    "or a part with observations"
                )
            last, iy, ix, slab = last[keep], iy[keep], ix[keep], slab[keep]
        bounds = np.searchsorted(slab, np.arange(len(self._slabs) + 1))
        by_slab = [np.arange(bounds[k], bounds[k + 1]) for k in range(len(self._slabs))]
        self._index = _Index(last, iy, ix, slab, by_slab)
        return self._index

    def _observed(self) -> np.ndarray:
        """Whether each (target month, origin) patch holds an observed target: (T, ny, nx)."""
        p, span = self._spec.patch, self._spec.span
        observed = np.zeros((len(self._time), len(self._oy), len(self._ox)), dtype=bool)
        for start, stop in self._runs:
            if stop - start < span:
                continue
            months = slice(start + span - 1, stop)
            seen = None
            for name in self._layout.targets:
                var = self._ds[name].isel(time=months).transpose("time", "y", "x").notnull()
                seen = var.data if seen is None else seen | var.data
            # Window sums of a cumulative count: the observed cells of every patch at once.
            xp = np if isinstance(seen, np.ndarray) else dask.array
            rows = xp.cumsum(seen, axis=1, dtype=np.int32)
            rows = xp.concatenate([xp.zeros_like(rows[:, :1]), rows], axis=1)
            rows = (rows[:, self._oy + p] - rows[:, self._oy]) > 0
            cols = xp.cumsum(rows, axis=2, dtype=np.int32)
            cols = xp.concatenate([xp.zeros_like(cols[:, :, :1]), cols], axis=2)
            (observed[months],) = dask.compute(
                (cols[:, :, self._ox + p] - cols[:, :, self._ox]) > 0
            )
        return observed

    def samples(self) -> pd.DataFrame:
        """The sample index, in the order of an unshuffled epoch (slab by slab).

        Columns: ``time`` (target month), ``last_input`` (month ``t``), ``y0``, ``x0`` (patch
        origin, cell indices) and ``slab`` (which read holds it). Reads nothing unless
        ``require_target`` (then the targets' observation mask, once).
        """
        index = self._build_index()
        return pd.DataFrame(
            {
                "time": self._time[index.last + self._spec.lead],
                "last_input": self._time[index.last],
                "y0": self._oy[index.iy],
                "x0": self._ox[index.ix],
                "slab": index.slab,
            }
        )

    def __len__(self) -> int:
        """Batches per epoch."""
        n, size = len(self._build_index().last), self._spec.batch_size
        return n // size if self.drop_last else math.ceil(n / size)

    # -- iteration ------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Batch]:
        """Epoch 0; in a training loop use :meth:`epoch` so that epochs differ."""
        return self.epoch(0)

    def epoch(self, i: int) -> Iterator[Batch]:
        """The batches of epoch ``i``: reproducible, and a different order for each ``i``.

        The order is a pure function of ``(seed, i)`` and the slab layout (the cube's chunks,
        ``max_slab_bytes``), never of the engine. Close the iterator (or let the loop end or
        break out of it) to stop the reading thread.
        """
        index = self._build_index()
        order = epoch_order(
            index.by_slab,
            shuffle=self.shuffle,
            seed=self.seed,
            epoch=int(i),
            batch_size=self._spec.batch_size,
        )
        if self.drop_last:
            order = order[: len(order) - len(order) % self._spec.batch_size]
        if self.engine == "slab":
            return self._slab_batches(index, order)
        return self._xbatcher_batches(index, order)

    def _slab_batches(self, index: _Index, order: np.ndarray) -> Iterator[Batch]:
        size = self._spec.batch_size
        slab_of = index.slab[order]
        n_batches = math.ceil(len(order) / size)
        used, first = np.unique(slab_of, return_index=True)
        _, last = np.unique(slab_of[::-1], return_index=True)
        first_batch = dict(zip(used.tolist(), (first // size).tolist(), strict=True))
        last_batch = dict(
            zip(used.tolist(), ((len(order) - 1 - last) // size).tolist(), strict=True)
        )
        sequence = used[np.argsort(first, kind="stable")].tolist()
        pool = (
            ThreadPoolExecutor(1, thread_name_prefix=THREAD_PREFIX) if self.prefetch > 0 else None
        )
        held: dict[int, Future | Prepared] = {}
        k = 0
        try:
            for b in range(n_batches):
                while k < len(sequence):
                    slab = sequence[k]
                    ahead = sum(first_batch[s] > b for s in held)
                    if first_batch[slab] > b and ahead >= self.prefetch:
                        break
                    held[slab] = pool.submit(self._read, slab) if pool else self._read(slab)
                    k += 1
                positions = order[b * size : (b + 1) * size]
                needed = np.unique(slab_of[b * size : (b + 1) * size]).tolist()
                for slab in needed:
                    if isinstance(held[slab], Future):
                        held[slab] = held[slab].result()
                items = []
                for pos in positions:
                    slab = self._slabs[index.slab[pos]]
                    items.append(
                        (
                            held[index.slab[pos]],
                            index.last[pos] - slab.time[0],
                            self._oy[index.iy[pos]] - slab.y[0],
                            self._ox[index.ix[pos]] - slab.x[0],
                        )
                    )
                batch = self._assemble(index, positions, items)
                for slab in needed:
                    if last_batch[slab] == b:
                        del held[slab]
                del items
                yield batch
        finally:
            for value in held.values():
                if isinstance(value, Future):
                    value.cancel()
            held.clear()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _read(self, k: int) -> Prepared:
        """Read slab ``k`` (one ``dask.compute`` for all variables) and prepare it."""
        slab = self._slabs[k]
        arrays = []
        for var in self._layout.variables:
            where = {"y": slice(*slab.y), "x": slice(*slab.x)}
            if var.timed:
                where["time"] = slice(*slab.time)
            arrays.append(self._ds[var.name].isel(where).transpose(*var.dims).data)
        values = dask.compute(*arrays)
        names = [var.name for var in self._layout.variables]
        return self._layout.prepare(dict(zip(names, values, strict=True)))

    def _xbatcher_batches(self, index: _Index, order: np.ndarray) -> Iterator[Batch]:
        size = self._spec.batch_size
        generators: dict[tuple[int, bool, bool], object] = {}
        variables = self._layout.variables
        for b in range(math.ceil(len(order) / size)):
            positions = order[b * size : (b + 1) * size]
            items = []
            for pos in positions:
                window = self._window(index.last[pos], index.iy[pos], index.ix[pos], generators)
                raw = {var.name: window[var.name].transpose(*var.dims).values for var in variables}
                items.append((self._layout.prepare(raw), self._spec.lookback - 1, 0, 0))
            yield self._assemble(index, positions, items)

    def _window(self, last: int, iy: int, ix: int, generators: dict) -> xr.Dataset:
        """The xbatcher window (``lookback + lead`` months, ``p x p`` cells) of one sample."""
        import xbatcher

        s = self._spec
        run = next(k for k, (start, stop) in enumerate(self._runs) if start <= last < stop)
        start, stop = self._runs[run]
        ny, nx = self._ds.sizes["y"], self._ds.sizes["x"]
        regular_y = len(range(0, ny - s.patch + 1, s.stride))
        regular_x = len(range(0, nx - s.patch + 1, s.stride))
        edge_y, edge_x = bool(iy >= regular_y), bool(ix >= regular_x)
        key = (run, edge_y, edge_x)
        if key not in generators:
            names = [var.name for var in self._layout.variables]
            sub = (
                self._ds[names]
                .reset_coords(drop=True)
                .isel(
                    time=slice(start, stop),
                    y=slice(ny - s.patch, ny) if edge_y else slice(None),
                    x=slice(nx - s.patch, nx) if edge_x else slice(None),
                )
            )
            generators[key] = xbatcher.BatchGenerator(
                sub,
                input_dims={"time": s.span, "y": s.patch, "x": s.patch},
                input_overlap={"time": s.span - 1, "y": s.overlap, "x": s.overlap},
            )
        n_y = 1 if edge_y else regular_y
        n_x = 1 if edge_x else regular_x
        at = ((last - s.lookback + 1 - start) * n_y + (0 if edge_y else iy)) * n_x + (
            0 if edge_x else ix
        )
        window = generators[key][int(at)]
        first = (
            self._time.values[last - s.lookback + 1],
            self._ds["y"].values[self._oy[iy]],
            self._ds["x"].values[self._ox[ix]],
        )
        if (window.time.values[0], window.y.values[0], window.x.values[0]) != first:
            raise RuntimeError(f"xbatcher window {at} does not start at {first}")
        return window

    def _assemble(
        self, index: _Index, positions: np.ndarray, items: list[tuple[Prepared, int, int, int]]
    ) -> Batch:
        """Cut each sample's patch from its prepared block: ``(prepared, t, y, x)`` local."""
        s, layout = self._spec, self._layout
        n, L, p = len(items), s.lookback, s.patch
        inputs = {
            group: np.empty((n, L, p, p, g.n_timed + g.n_static), dtype=np.float32)
            for group, g in layout.groups.items()
        }
        values, missing = layout.target_channels()
        targets = np.empty((n, p, p, len(values)), dtype=np.float32)
        mask = np.empty_like(targets)
        for i, (prepared, t, y, x) in enumerate(items):
            ys, xs = slice(y, y + p), slice(x, x + p)
            for group, (timed, static) in prepared.items():
                out = inputs[group][i]
                split = 0 if timed is None else timed.shape[-1]
                if timed is not None:
                    out[..., :split] = timed[t - L + 1 : t + 1, ys, xs]
                if static is not None:
                    out[..., split:] = static[ys, xs]
            history = prepared[HISTORY][0][t + s.lead, ys, xs]
            targets[i] = history[..., values]
            mask[i] = 1.0 - history[..., missing]
        return Batch(
            inputs=inputs,
            targets=targets,
            mask=mask,
            time=self._time.values[index.last[positions] + s.lead],
            y0=self._oy[index.iy[positions]],
            x0=self._ox[index.ix[positions]],
        )


def _check_cube(ds: xr.Dataset) -> None:
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"ds must be an xarray.Dataset (a cube), got {type(ds).__name__}")
    for dim in ("time", "y", "x"):
        if dim not in ds.dims:
            raise ValueError(f"the cube has no {dim!r} dim; a cube has dims ('time', 'y', 'x')")
    if "time" not in ds.indexes or not isinstance(ds.indexes["time"], pd.DatetimeIndex):
        raise ValueError("the cube's 'time' must be an index of datetime64 month starts")
