"""Reading and writing: Zarr stores, Intake catalogs, and the atomic writes behind every output.

:mod:`~geocryo.io.stores`
    :func:`write_zarr` and :func:`open_zarr`: Zarr v3 cubes, written atomically, opened lazily.
:mod:`~geocryo.io.catalog`
    :func:`open_catalog` and :func:`open_cube`: the Intake catalogs and the cube they assemble.
"""

from .catalog import CATALOG_ENV as CATALOG_ENV
from .catalog import DATA_ENV as DATA_ENV
from .catalog import MissingDataError as MissingDataError
from .catalog import catalog_path as catalog_path
from .catalog import open_catalog as open_catalog
from .catalog import open_cube as open_cube
from .stores import default_chunks as default_chunks
from .stores import open_zarr as open_zarr
from .stores import write_stores as write_stores
from .stores import write_zarr as write_zarr

__all__ = [
    "CATALOG_ENV",
    "DATA_ENV",
    "MissingDataError",
    "catalog_path",
    "default_chunks",
    "open_catalog",
    "open_cube",
    "open_zarr",
    "write_stores",
    "write_zarr",
]
