"""A physically grounded synthetic Alaska: the embedded default cube, and its complete truth.

>>> cube, truth = geocryo.synthetic.alaska(ny=64, nx=64, start="2000-01", end="2019-12")

Modules, each named for what it simulates:

:mod:`~geocryo.synthetic.world`
    :func:`alaska`: the grid, the chunked lazy graph, the cube and its truth.
:mod:`~geocryo.synthetic.landscape`
    The land surface (climate normals, soils, vegetation, wetlands) and the weather anomalies,
    as functions of place and month.
:mod:`~geocryo.synthetic.evolution`
    The month-by-month evolution of one block of cells: weather, thaw and freeze-back, fluxes,
    process models and gridded observations, compiled with JAX.
:mod:`~geocryo.synthetic.observations`
    What sites, satellites and aircraft see of it.
:mod:`~geocryo.synthetic.physics`
    The formulas: degree days, Stefan thaw, flux responses, insolation.
"""

from .observations import CAMPAIGNS as CAMPAIGNS
from .observations import MISSIONS as MISSIONS
from .world import VARIABLES as VARIABLES
from .world import alaska as alaska

__all__ = ["CAMPAIGNS", "MISSIONS", "VARIABLES", "alaska"]
