"""Where samples are: the window spec, patch origins, months of a part, slabs and epoch orders.

Everything here is geometry on integer indices; nothing reads data. A *sample* is a pair (last
input month ``t``, patch origin ``(y0, x0)``): its inputs are months ``t - L + 1 .. t`` of the
``p x p`` cells from the origin, its target is month ``t + lead`` of the same cells. A *slab* is
a block of cells (aligned to the cube's chunks, plus a halo of ``p - 1`` cells so that every patch
starting in the block is complete) over a range of months: the unit the fast stream reads at once.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._checks import integer

__all__ = ["Slab", "WindowSpec", "epoch_order", "month_runs", "origins", "plan_slabs"]


@dataclass(frozen=True)
class WindowSpec:
    """Shape of the supervised windows and of the batches.

    Parameters
    ----------
    lookback
        ``L``: months of inputs, ending at the last input month ``t``.
    lead
        The target is month ``t + lead`` (1 predicts the next month).
    patch
        ``p``: patches are ``p x p`` cells.
    overlap
        Cells shared by neighbouring patches; origins are ``patch - overlap`` cells apart.
    batch_size
        Samples per batch.
    """

    lookback: int = 12
    lead: int = 1
    patch: int = 16
    overlap: int = 0
    batch_size: int = 32

    def __post_init__(self) -> None:
        # Every type first ("must be an int"), then every bound ("must be >= 1").
        for name in ("lookback", "lead", "patch", "overlap", "batch_size"):
            object.__setattr__(self, name, integer(f"WindowSpec.{name}", getattr(self, name)))
        for name in ("lookback", "lead", "patch", "batch_size"):
            integer(f"WindowSpec.{name}", getattr(self, name), low=1, what=">= 1")
        if not 0 <= self.overlap < self.patch:
            raise ValueError(
                f"WindowSpec.overlap must be in [0, patch) = [0, {self.patch}), got "
                f"{self.overlap}: neighbouring patches need a stride of at least one cell"
            )

    @property
    def stride(self) -> int:
        """Cells between neighbouring patch origins."""
        return self.patch - self.overlap

    @property
    def span(self) -> int:
        """Months one sample touches: ``lookback`` inputs, then up to the target month."""
        return self.lookback + self.lead


def origins(size: int, patch: int, stride: int, dim: str = "y") -> np.ndarray:
    """Patch origins along one dim: every ``stride`` cells, plus one flush with the far edge.

    Patches never pad: the last origin is ``size - patch``, so every cell is in some patch.
    """
    if patch > size:
        raise ValueError(
            f"WindowSpec.patch={patch} is larger than the cube's {dim!r} size {size}; "
            f"choose patch <= {size}"
        )
    starts = np.arange(0, size - patch + 1, stride)
    if starts[-1] + patch < size:
        starts = np.append(starts, size - patch)
    return starts


def month_runs(time: pd.DatetimeIndex, months: pd.DatetimeIndex) -> list[tuple[int, int]]:
    """Contiguous runs of ``months`` as ``[start, stop)`` index ranges of the cube's ``time``.

    Raises
    ------
    ValueError
        If a month is not on the cube's time axis.
    """
    months = pd.DatetimeIndex(months)
    if len(months) == 0:
        raise ValueError("months is empty; pass the months of one part, e.g. TimeSplit.periods")
    where = time.get_indexer(months)
    if (where < 0).any():
        absent = months[where < 0]
        raise ValueError(
            f"months: {len(absent)} month(s) are not on the cube's time axis "
            f"({time[0]:%Y-%m} to {time[-1]:%Y-%m}), first {absent[0]:%Y-%m-%d}; "
            "pass month starts of this cube"
        )
    where = np.unique(where)
    breaks = np.flatnonzero(np.diff(where) != 1) + 1
    return [(int(run[0]), int(run[-1]) + 1) for run in np.split(where, breaks)]


@dataclass(frozen=True)
class Slab:
    """One read of the fast stream: cube index ranges, and the samples' last input months.

    ``time``, ``y`` and ``x`` are the ``[start, stop)`` index ranges read; samples of the slab
    have their last input month in ``last`` and their origins in ``oy`` x ``ox`` (indices into
    the stream's origin arrays).
    """

    time: tuple[int, int]
    y: tuple[int, int]
    x: tuple[int, int]
    last: tuple[int, int]
    oy: tuple[int, int]
    ox: tuple[int, int]

    @property
    def cells(self) -> int:
        """Cells of the slab's footprint."""
        return (self.y[1] - self.y[0]) * (self.x[1] - self.x[0])


def _fits(months: int, rows: int, cols: int, per_month: int, per_cell: int, limit: int) -> bool:
    return rows * cols * (months * per_month + per_cell) <= limit


def plan_slabs(
    runs: list[tuple[int, int]],
    shape: tuple[int, int],
    oy: np.ndarray,
    ox: np.ndarray,
    chunks: tuple[int, int],
    spec: WindowSpec,
    per_month: int,
    per_cell: int,
    max_bytes: int,
) -> list[Slab]:
    """Cut the samples into slabs that hold at most ``max_bytes`` once prepared.

    Blocks start from the cube's chunks (so a slab decodes whole chunks), grow by whole chunks
    while a slab of every month of the longest run still fits, and shrink (halving) only when a
    slab could not hold even ``lookback + lead`` months of samples. Time is then split into
    nearly equal pieces that fit, each read with its own look-back.

    Parameters
    ----------
    runs
        Contiguous ``[start, stop)`` month ranges of the part.
    shape
        ``(ny, nx)`` of the cube.
    oy, ox
        Patch origins along y and x (sorted).
    chunks
        ``(cy, cx)``: the cube's chunk sizes along y and x (the base block).
    spec
        The windows.
    per_month, per_cell
        Prepared bytes per cell and month (time-varying channels) and per cell (static ones).
    max_bytes
        Bound on one prepared slab.
    """
    p, span = spec.patch, spec.span
    counts = [stop - start - span + 1 for start, stop in runs]
    longest = max(counts)
    by, bx = (max(1, min(c, n)) for c, n in zip(chunks, shape, strict=True))

    def fits(months: int, yb: int, xb: int) -> bool:
        rows, cols = min(yb + p - 1, shape[0]), min(xb + p - 1, shape[1])
        return _fits(months, rows, cols, per_month, per_cell, max_bytes)

    all_months = longest + span - 1
    grown = True
    while grown:  # fewer, larger slabs when chunks are small
        grown = False
        if by < shape[0] and fits(all_months, by + chunks[0], bx):
            by, grown = min(by + chunks[0], shape[0]), True
        if bx < shape[1] and fits(all_months, by, bx + chunks[1]):
            bx, grown = min(bx + chunks[1], shape[1]), True
    enough = min(longest, span) + span - 1
    while not fits(enough, by, bx) and max(by, bx) > 1:
        by, bx = (max(1, by // 2), bx) if by >= bx else (by, max(1, bx // 2))
    if not fits(span, by, bx):
        need = min(p, shape[0]) * min(p, shape[1]) * (span * per_month + per_cell)
        raise ValueError(
            f"max_slab_bytes={max_bytes} cannot hold even one sample ({need} bytes); raise it"
        )
    rows, cols = min(by + p - 1, shape[0]), min(bx + p - 1, shape[1])
    months = max_bytes // (rows * cols) - per_cell
    piece = max(1, min(longest, months // per_month - span + 1))

    oy_blocks = _group(oy, by)
    ox_blocks = _group(ox, bx)
    slabs = []
    for (start, _), count in zip(runs, counts, strict=True):
        if count < 1:
            continue
        first = start + spec.lookback - 1
        pieces = math.ceil(count / piece)
        edges = first + np.round(np.linspace(0, count, pieces + 1)).astype(int)
        for lo, hi in itertools.pairwise(edges.tolist()):
            months_read = (int(lo) - spec.lookback + 1, int(hi) + spec.lead)
            for iy in oy_blocks:
                for ix in ox_blocks:
                    slabs.append(
                        Slab(
                            time=months_read,
                            y=(int(oy[iy[0]]), int(oy[iy[1] - 1]) + p),
                            x=(int(ox[ix[0]]), int(ox[ix[1] - 1]) + p),
                            last=(int(lo), int(hi)),
                            oy=iy,
                            ox=ix,
                        )
                    )
    return slabs


def _group(starts: np.ndarray, block: int) -> list[tuple[int, int]]:
    """``[first, stop)`` positions of the origins that fall in each block of ``block`` cells."""
    keys = starts // block
    edges = np.flatnonzero(np.diff(keys)) + 1
    bounds = [0, *edges.tolist(), len(starts)]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def epoch_order(
    slab_samples: list[np.ndarray],
    *,
    shuffle: bool,
    seed: int,
    epoch: int,
    batch_size: int,
) -> np.ndarray:
    """The order in which one epoch visits the samples.

    Without ``shuffle``, slab by slab, each in its own order. With it, the slabs come in a
    random order and each slab's samples are shuffled; the second part of one slab is shuffled
    together with the first part of the next (parts cut so that each mix fills whole batches),
    so a batch draws from at most two neighbouring slabs in the read order, and at most two
    slabs need to be in memory besides those being prefetched.

    Parameters
    ----------
    slab_samples
        For each slab, the positions (in the sample index) of its samples.
    shuffle, seed, epoch
        The order is a pure function of these (``numpy.random.default_rng([seed, epoch])``).
    batch_size
        Mixes are cut at multiples of this where the slabs are large enough.
    """
    if not shuffle:
        return np.concatenate([*slab_samples, np.zeros(0, dtype=np.int64)])
    rng = np.random.default_rng([seed, epoch])
    pieces, carry = [], np.zeros(0, dtype=np.int64)
    order = rng.permutation(len(slab_samples))
    for k, slab in enumerate(order):
        samples = rng.permutation(slab_samples[slab])
        n = len(samples)
        if k == len(order) - 1:
            take = n
        else:
            # Take about half of this slab into the current mix, so that the mix is whole batches.
            first = (-len(carry)) % batch_size
            takes = np.arange(first, n + 1, batch_size)
            take = int(takes[np.argmin(np.abs(takes - n / 2))]) if len(takes) else n
        mix = np.concatenate([carry, samples[:take]])
        pieces.append(rng.permutation(mix))
        carry = samples[take:]
    pieces.append(carry)
    return np.concatenate([*pieces, np.zeros(0, dtype=np.int64)])
