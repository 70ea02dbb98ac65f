"""Readers that turn real data tables into cubes: GeoCryoAI (ORNL DAAC 2371), AmeriFlux, CALM.

Each reader returns a small cube on a target grid (EPSG:3338 metres): a regular monthly ``time``
axis of month starts, variables on ``(time, y, x)`` with NaN wherever nothing was observed, CF
attributes (``units``, ``long_name``, ``modality``, ``source``, ``grid_mapping``) and the grid's
``lat``/``lon``/``spatial_ref`` coordinates. Tables are gridded in memory with numpy (one
``bincount`` per variable), so the table and the ``time x y x`` output must fit in memory.

Fill values (-9999 and the others in :data:`geocryo.cube.SENTINELS`), infinities and text such as
``"NA"`` become NaN before anything is averaged.

One module per format (:mod:`.geocryoai`, :mod:`.ameriflux`, :mod:`.calm`); what they share
(columns, units, the time axis, grid placement) lives in :mod:`._common`.
"""

from ._common import UNIT_CONVERSIONS as UNIT_CONVERSIONS
from .ameriflux import read_ameriflux as read_ameriflux
from .calm import read_calm as read_calm
from .geocryoai import GEOCRYOAI_SOURCE as GEOCRYOAI_SOURCE
from .geocryoai import GEOCRYOAI_UNITS as GEOCRYOAI_UNITS
from .geocryoai import read_geocryoai as read_geocryoai

__all__ = [
    "GEOCRYOAI_SOURCE",
    "GEOCRYOAI_UNITS",
    "UNIT_CONVERSIONS",
    "read_ameriflux",
    "read_calm",
    "read_geocryoai",
]
