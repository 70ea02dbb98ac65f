"""Training-time augmentation: hide the in situ history of cells, as most cells have none.

In situ targets are observed at a few dozen sites, yet the model forecasts every cell. A network
trained only where the targets are observed always sees their history there, learns to lean on
it, and then meets cells without any. :class:`HistoryDropout` hides the target history of a
random share of the cells of every training patch (values 0, missing indicators 1: exactly what
a cell without a site looks like; the target's climatology at the cell, where it is an input,
goes with it), so that the network also learns to forecast from the other
modalities alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .._checks import number
from .channels import HISTORY
from .stream import Batch, PatchStream

__all__ = ["HistoryDropout", "MaskCells", "hide_history"]


def hide_history(batch: Batch, hidden: np.ndarray, values: list[int], missing: list[int]) -> Batch:
    """``batch`` with the history of the cells where ``hidden`` (B, p, p) is true removed.

    Over the whole look-back, those cells' target values become 0 and their missing indicators
    1. The targets and the mask (what the loss sees) are unchanged. ``values`` and ``missing``
    are the channel positions (:attr:`PatchStream.history_channels`).
    """
    history = batch.inputs[HISTORY]
    if hidden.shape != (history.shape[0], *history.shape[2:4]):
        raise ValueError(
            f"hidden must be (B, p, p) = {(history.shape[0], *history.shape[2:4])}, got "
            f"{hidden.shape}"
        )
    cells = hidden[:, None, :, :, None]
    out = history.copy()
    out[..., values] = np.where(cells, np.float32(0), history[..., values])
    out[..., missing] = np.where(cells, np.float32(1), history[..., missing])
    return batch._replace(inputs={**batch.inputs, HISTORY: out})


class HistoryDropout:
    """A training stream whose batches hide the target history of a share of the cells.

    Iterate epochs with :meth:`epoch` as with the stream; ``len`` and :attr:`channels` are the
    stream's.

    Parameters
    ----------
    stream
        The training :class:`~geocryo.batching.PatchStream`.
    rate
        Probability that a cell's history is hidden, independently per cell and sample.
    seed
        With the epoch, fixes which cells are hidden, so that a resumed fit draws exactly what
        an uninterrupted one would.
    """

    def __init__(self, stream: PatchStream, rate: float, seed: int = 0) -> None:
        rate = number("rate", rate, low=0, high=1, what="a number in [0, 1]")
        if HISTORY not in stream.channels:
            raise ValueError(f"the stream has no {HISTORY!r} input group to hide")
        self.stream = stream
        self.rate = rate
        self.seed = int(seed)

    def __repr__(self) -> str:
        return f"HistoryDropout({self.stream!r}, rate={self.rate})"

    def __len__(self) -> int:
        return len(self.stream)

    @property
    def channels(self) -> dict[str, list[str]]:
        """The stream's input groups and channels."""
        return self.stream.channels

    def __iter__(self) -> Iterator[Batch]:
        return self.epoch(0)

    def epoch(self, i: int) -> Iterator[Batch]:
        """The stream's batches of epoch ``i``, with histories hidden."""
        rng = np.random.default_rng([self.seed, int(i), 0x6869])
        values, missing = self.stream.site_channels
        batches = self.stream.epoch(i)
        try:
            for batch in batches:
                hidden = rng.random(batch.targets.shape[:3]) < self.rate
                yield hide_history(batch, hidden, values, missing)
        finally:
            batches.close()


class MaskCells:
    """A stream whose batches never score some cells: their targets leave the loss.

    The cells' inputs (their history, where they have one) still reach the network; only the
    ``mask`` the loss reads is 0 there. :func:`~geocryo.forecast.fit` holds a share of the
    sites out of training this way, to measure on them how the model forecasts a cell it never
    learnt (:mod:`geocryo.forecast.calibration`).

    Parameters
    ----------
    stream
        A :class:`~geocryo.batching.PatchStream` (or a wrapper with its ``epoch``).
    cells
        ``(ny, nx)`` bool on the stream's grid: True where the targets leave the loss.
    """

    def __init__(self, stream, cells: np.ndarray) -> None:
        self.stream = stream
        self.cells = np.asarray(cells, bool)

    def __repr__(self) -> str:
        return f"MaskCells({self.stream!r}, cells={int(self.cells.sum())})"

    def __len__(self) -> int:
        return len(self.stream)

    def __getattr__(self, name: str):
        if name in ("stream", "cells"):
            raise AttributeError(name)
        return getattr(self.stream, name)  # channels, history_channels, anchor_channels, ...

    def __iter__(self) -> Iterator[Batch]:
        return self.epoch(0)

    def epoch(self, i: int) -> Iterator[Batch]:
        """The stream's batches of epoch ``i``, with the cells' targets masked out."""
        batches = self.stream.epoch(i)
        try:
            for batch in batches:
                p = batch.mask.shape[1]
                rows = np.asarray(batch.y0)[:, None] + np.arange(p)[None, :]
                cols = np.asarray(batch.x0)[:, None] + np.arange(p)[None, :]
                out = self.cells[rows[:, :, None], cols[:, None, :]]  # (B, p, p)
                mask = np.where(out[..., None], np.float32(0), batch.mask)
                yield batch._replace(mask=mask)
        finally:
            batches.close()
