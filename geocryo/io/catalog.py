"""Intake catalogs of cubes: the driver behind every entry, the master catalog, and ``open_cube``.

The catalogs live in ``catalogs/`` at the root of the repository: ``geocryo.yaml`` nests one
catalog per modality (``in_situ.yaml``, ``remote_sensing.yaml``, ``process_models.yaml``) and
``synthetic.yaml`` for the embedded synthetic Alaska. Every data entry is a :class:`CubeSource`:
a Zarr store opened lazily (optionally keeping only some modalities), or a file of real
observations put on a cube's grid by one of :mod:`geocryo.readers`.

Where the data live
-------------------
The synthetic entries read ``data/synthetic/alaska.zarr`` in the repository (written by
``geocryo synth``), or ``$GEOCRYO_DATA/synthetic/alaska.zarr`` when the environment variable
``GEOCRYO_DATA`` names a data directory, or the store given by their ``store`` parameter. The
real-data entries read their files from ``data/in_situ/`` (or ``$GEOCRYO_DATA/in_situ/``), or
wherever their ``path`` parameter says; a missing file is an error that says what to download,
from where, and where to put it.
"""

from __future__ import annotations

import importlib
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import intake
import numpy as np
import pandas as pd
import xarray as xr
from intake.catalog import Catalog
from intake.source.base import DataSource, Schema

from ..cube import MODALITIES, CubeError, validate
from .stores import open_zarr

__all__ = [
    "CATALOG_ENV",
    "DATA_ENV",
    "DEFAULT_ENTRIES",
    "CubeSource",
    "MissingDataError",
    "catalog_path",
    "open_catalog",
    "open_cube",
]

#: Environment variable naming a master catalog to use instead of the repository's.
CATALOG_ENV = "GEOCRYO_CATALOG"
#: Environment variable naming the data directory (``synthetic/alaska.zarr``, ``in_situ/``).
DATA_ENV = "GEOCRYO_DATA"
#: The entries :func:`open_cube` assembles by default: the synthetic store, one modality at a time.
DEFAULT_ENTRIES: tuple[str, ...] = (
    "in_situ.synthetic",
    "remote_sensing.synthetic",
    "process_models.synthetic",
)

_GRID_COORDS = ("y", "x", "lat", "lon", "spatial_ref")

# intake 2.0.9 warns about shell commands on every string parameter, shell or not; the warning
# says nothing about this package's catalogs (which run no shell commands), so it is silenced.
warnings.filterwarnings(
    "ignore",
    message="Shell command not executed due to getshell=False",
    category=UserWarning,
    module="intake.catalog.utils",
)


class MissingDataError(FileNotFoundError):
    """The data behind a catalog entry are not where the entry looks for them.

    The message says what to download (or build), from where, and where to put it.
    """


class CubeSource(DataSource):
    """A cube, or a part of one, behind an intake catalog entry.

    Zarr stores are opened lazily with :func:`geocryo.io.open_zarr`; files of real observations
    are read by ``reader`` onto the grid of an existing cube.

    Parameters
    ----------
    urlpath
        Path or URL of a Zarr store, or (with ``reader``) the path of the data file.
    modalities
        Keep only the data variables whose ``modality`` attribute is one of these
        (see :data:`geocryo.cube.MODALITIES`).
    variables
        Keep only these data variables; with ``modalities`` too, a variable is kept if either
        selects it.
    reader
        Name of a function in :mod:`geocryo.readers` (``"read_calm"``), or the dotted path of
        any function ``reader(path, grid=..., **reader_kwargs) -> xr.Dataset``.
    grid
        The grid a reader puts the observations on: a cube store path (only its coordinates
        are read) or a dataset with ``y``/``x`` coordinates. ``None`` or ``""`` lets the reader
        choose its own grid.
    download_hint
        What to download or build, from where, and where to put it; shown when ``urlpath``
        does not exist.
    storage_options
        Passed to fsspec for remote stores.
    metadata
        Catalog metadata of the entry.
    **reader_kwargs
        Passed on to ``reader``. A value of ``""`` or NaN means "not given": it is left out, so
        that the reader's own default applies (intake parameters cannot be ``None``).
    """

    container = "xarray"
    name = "geocryo_cube"
    partition_access = False

    def __init__(
        self,
        urlpath: str | os.PathLike,
        *,
        modalities: str | Sequence[str] | None = None,
        variables: str | Sequence[str] | None = None,
        reader: str | None = None,
        grid: str | os.PathLike | xr.Dataset | None = None,
        download_hint: str | None = None,
        storage_options: dict | None = None,
        metadata: dict | None = None,
        **reader_kwargs,
    ) -> None:
        super().__init__(storage_options=storage_options, metadata=metadata)
        if not str(urlpath).strip():
            raise ValueError("urlpath is empty; give the path or URL of the store or file to read")
        self.urlpath = _normalise(urlpath)
        self.modalities = _as_tuple(modalities)
        self.variables = _as_tuple(variables)
        for modality in self.modalities:
            if modality not in MODALITIES:
                raise ValueError(
                    f"unknown modality {modality!r} in modalities; choose from "
                    f"{', '.join(MODALITIES)}"
                )
        self.reader = reader or None
        if self.reader is None and reader_kwargs:
            raise TypeError(
                f"{sorted(reader_kwargs)} are reader arguments, but this source reads a Zarr "
                "store and has no reader"
            )
        self.grid = grid
        self.download_hint = download_hint
        self.reader_kwargs = {k: v for k, v in reader_kwargs.items() if not _unset(v)}
        self._ds: xr.Dataset | None = None

    # -- intake's DataSource interface --------------------------------------------------------

    def _get_schema(self) -> Schema:
        ds = self._open()
        return Schema(
            datashape=None,
            dtype=None,
            shape=None,
            npartitions=1,
            extra_metadata={},
            dims=dict(ds.sizes),
            data_vars={str(name): tuple(var.dims) for name, var in ds.data_vars.items()},
            coords=tuple(str(name) for name in ds.coords),
        )

    def discover(self) -> dict:
        """Dims, data variables (with their dims) and coordinates, without reading data values.

        A Zarr store is opened for its metadata only; a file of real observations is read
        (once: the result is kept) because its dims depend on what it holds.
        """
        info = super().discover()
        info.update(
            dims=self._schema["dims"],
            data_vars=self._schema["data_vars"],
            coords=self._schema["coords"],
        )
        return info

    def _get_partition(self, i: int) -> xr.Dataset:
        return self.to_dask().compute()

    def read(self) -> xr.Dataset:
        """The data, loaded into memory."""
        return self._get_partition(0)

    def to_dask(self) -> xr.Dataset:
        """The data as a lazy, dask-backed :class:`xarray.Dataset`; only metadata are read."""
        self._load_metadata()
        return self._ds

    def _close(self) -> None:
        if self._ds is not None:
            self._ds.close()
        self._ds = None
        self._schema = None

    # -- opening ------------------------------------------------------------------------------

    def _open(self) -> xr.Dataset:
        if self._ds is None:
            ds = self._read_file() if self.reader else self._open_store()
            ds = _select(ds, self.modalities, self.variables, self.name)
            validate(ds)
            if not any(var.chunks for var in ds.data_vars.values()):
                ds = ds.chunk()
            self._ds = ds
        return self._ds

    def _open_store(self) -> xr.Dataset:
        self._require(self.urlpath)
        try:
            return open_zarr(
                self.urlpath, validate_cube=False, storage_options=self.storage_options or None
            )
        except FileNotFoundError as err:  # a remote store that is not there
            raise self._missing(self.urlpath) from err

    def _read_file(self) -> xr.Dataset:
        self._require(self.urlpath)
        reader = _resolve_reader(self.reader)
        grid = self._grid()
        kwargs = dict(self.reader_kwargs)
        if grid is not None:
            kwargs["grid"] = grid
        return reader(self.urlpath, **kwargs)

    def _grid(self) -> xr.Dataset | None:
        if self.grid is None or isinstance(self.grid, xr.Dataset):
            return self.grid
        if not str(self.grid).strip():
            return None
        path = _normalise(self.grid)
        if not _exists(path):
            raise MissingDataError(
                f"catalog entry {self.name!r} puts its data on the grid of the cube store "
                f"{path}, which does not exist. Build the synthetic cube with `geocryo synth` "
                "(`geocryo synth --out PATH` to put it elsewhere), or pass grid=PATH naming an "
                "existing cube store."
            )
        store = open_zarr(path, validate_cube=False)
        return xr.Dataset(coords={k: store.coords[k] for k in _GRID_COORDS if k in store.coords})

    def _require(self, path: str) -> None:
        if not _exists(path):
            raise self._missing(path)

    def _missing(self, path: str) -> MissingDataError:
        hint = self.download_hint or (
            "Pass the location of the data with the entry's path parameter."
        )
        return MissingDataError(
            f"no data for catalog entry {self.name!r}: {path} does not exist. {hint.strip()}"
        )


def _normalise(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    if not _is_local(path):
        return path
    return os.path.abspath(os.path.expanduser(path))


def _is_local(path: str) -> bool:
    return "://" not in path


def _exists(path: str) -> bool:
    """Whether ``path`` exists; URLs are taken on trust (opening them says if they do not)."""
    return not _is_local(path) or Path(path).exists()


def _as_tuple(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _unset(value: object) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, float) and math.isnan(value)


def _resolve_reader(name: str):
    module_name, _, function = name.rpartition(".")
    module_name = module_name or "geocryo.readers"
    try:
        module = importlib.import_module(module_name)
        return getattr(module, function)
    except (ImportError, AttributeError) as err:
        raise ImportError(
            f"reader {name!r} not found: expected a function {function!r} in {module_name}"
        ) from err


def _select(
    ds: xr.Dataset, modalities: tuple[str, ...], variables: tuple[str, ...], entry: str
) -> xr.Dataset:
    """The data variables of ``ds`` picked by modality or by name (all when neither is given)."""
    if not modalities and not variables:
        return ds
    unknown = [name for name in variables if name not in ds.data_vars]
    if unknown:
        raise KeyError(
            f"catalog entry {entry!r} asks for variables {unknown} that the data do not hold; "
            f"it holds {sorted(map(str, ds.data_vars))}"
        )
    keep = [
        name
        for name, var in ds.data_vars.items()
        if name in variables or var.attrs.get("modality") in modalities
    ]
    if not keep:
        found = sorted({str(var.attrs.get("modality")) for var in ds.data_vars.values()})
        raise CubeError(
            "<dataset>",
            f"catalog entry {entry!r} keeps modalities {list(modalities)}, but the data hold "
            f"only {found}",
        )
    return ds[keep]


# -- the master catalog ------------------------------------------------------------------------


def catalog_path() -> Path:
    """Where the master catalog is: ``$GEOCRYO_CATALOG``, else the repository's
    ``catalogs/geocryo.yaml`` (beside the ``geocryo`` package of a source tree or an editable
    install)."""
    if os.environ.get(CATALOG_ENV):
        return Path(os.environ[CATALOG_ENV]).expanduser()
    return Path(__file__).resolve().parents[2] / "catalogs" / "geocryo.yaml"


def open_catalog(path: str | os.PathLike | None = None) -> Catalog:
    """Open the master intake catalog of geocryo data.

    Opening reads the YAML files only; no data are touched until an entry is read.

    Parameters
    ----------
    path
        A catalog YAML file; by default :func:`catalog_path`.

    Returns
    -------
    intake.catalog.Catalog
        With one nested catalog per modality (``in_situ``, ``remote_sensing``,
        ``process_models``) and ``synthetic``; e.g. ``cat.in_situ.calm(path=...).to_dask()``.

    Examples
    --------
    >>> cat = geocryo.open_catalog()
    >>> cat.synthetic.alaska(store="data/synthetic/alaska.zarr").to_dask()  # doctest: +SKIP
    """
    path = Path(path).expanduser() if path is not None else catalog_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"no catalog at {path}. The geocryo catalogs live in catalogs/ of the source tree: "
            f"install geocryo from a clone with `pip install -e .`, or point {CATALOG_ENV} "
            "(or the path argument) at catalogs/geocryo.yaml"
        )
    return intake.open_catalog(str(path))


def open_cube(
    entries: Sequence[str | CubeSource] | None = None,
    catalog: Catalog | str | os.PathLike | None = None,
    **params,
) -> xr.Dataset:
    """Assemble one lazy, validated cube from catalog entries, one per modality.

    Each entry is opened lazily (nothing but metadata is read), the grids are checked to be
    the same, and the parts are merged into one dataset. Months that one part lacks are NaN.

    Parameters
    ----------
    entries
        Dotted names of entries in ``catalog`` (``"in_situ.calm"``), or sources already made
        from a catalog. By default :data:`DEFAULT_ENTRIES`: the whole synthetic cube, opened
        modality by modality.
    catalog
        The catalog the names refer to, or the path of its YAML file; by default
        :func:`open_catalog`.
    **params
        Catalog parameters (``store="elsewhere/alaska.zarr"``, ``path=...``); each goes to
        every entry that declares it.

    Returns
    -------
    xr.Dataset
        The cube, dask-backed, checked with :func:`geocryo.cube.validate`.

    Raises
    ------
    TypeError
        If a parameter is declared by none of the entries.
    CubeError
        If the entries are on different grids, hold the same variable, or the result breaks
        the cube conventions.
    MissingDataError
        If the data behind an entry are absent; the message says how to get them.
    """
    names = list(DEFAULT_ENTRIES if entries is None else entries)
    if not names:
        raise ValueError("entries is empty; name at least one catalog entry")
    if catalog is None or isinstance(catalog, str | os.PathLike):
        catalog = open_catalog(catalog)
    sources = _configure(names, catalog, params)
    parts = {label: source.to_dask() for label, source in sources.items()}
    return _merge(parts)


def _configure(
    entries: list[str | CubeSource], catalog: Catalog, params: Mapping[str, object]
) -> dict[str, DataSource]:
    sources: dict[str, DataSource] = {}
    declared: set[str] = set()
    for i, entry in enumerate(entries):
        source = catalog[entry] if isinstance(entry, str) else entry
        label = entry if isinstance(entry, str) else _label(source)
        if label in sources:
            label = f"{label} (#{i + 1})"
        names = {up["name"] for up in _parameters(source)}
        declared |= names
        wanted = {k: v for k, v in params.items() if k in names}
        sources[label] = source(**wanted) if wanted else source
    unknown = sorted(set(params) - declared)
    if unknown:
        raise TypeError(
            f"no entry among {list(sources)} declares the parameters {unknown}; "
            f"they declare {sorted(declared)}"
        )
    return sources


def _label(source: DataSource) -> str:
    """How errors name a source: ``"in_situ.calm"`` for the entry ``calm`` of the nested
    catalog ``in_situ``, its path for a source made in Python."""
    catalog = getattr(source.cat, "name", None)
    if catalog:
        return f"{catalog}.{source.name}"
    return str(getattr(source, "urlpath", source.name))


def _parameters(source: DataSource) -> list[dict]:
    try:
        return source.describe()["user_parameters"]
    except AttributeError:  # a source made in Python, not from a catalog entry
        return []


def _merge(parts: dict[str, xr.Dataset]) -> xr.Dataset:
    """Merge cube parts that share a grid; refuse parts on different grids or sharing a variable."""
    (first, reference), *others = parts.items()
    seen = {str(name): first for name in reference.data_vars}
    for label, part in others:
        _check_same_grid(first, reference, label, part)
        for name in map(str, part.data_vars):
            if name in seen:
                raise CubeError(
                    name,
                    f"comes from both {seen[name]!r} and {label!r}; keep it in one of them "
                    "(the entries' variables or modalities)",
                )
            seen[name] = label
    # The grids are equal, so coordinates are taken from the first part without comparing
    # their values (which would read them); time is joined outer, gaps become NaN.
    cube = xr.merge(
        list(parts.values()), join="outer", compat="override", combine_attrs="drop_conflicts"
    )
    return validate(_regular_months(cube))


def _check_same_grid(a: str, ds_a: xr.Dataset, b: str, ds_b: xr.Dataset) -> None:
    for dim in ("y", "x"):
        ca, cb = ds_a[dim].values, ds_b[dim].values
        if ca.shape != cb.shape or not np.array_equal(ca, cb):
            raise CubeError(
                dim,
                f"entries {a!r} and {b!r} are on different grids: {a!r} has {_describe(ca)}, "
                f"{b!r} has {_describe(cb)}. Put them on one grid (the readers' grid "
                "parameter names the cube store whose grid they use) before merging",
            )
    wkt_a = ds_a.coords.get("spatial_ref", xr.DataArray()).attrs.get("crs_wkt")
    wkt_b = ds_b.coords.get("spatial_ref", xr.DataArray()).attrs.get("crs_wkt")
    if wkt_a and wkt_b and wkt_a != wkt_b:
        raise CubeError(
            "spatial_ref",
            f"entries {a!r} and {b!r} are in different projections; reproject one of them",
        )


def _describe(coord: np.ndarray) -> str:
    if coord.size == 0:
        return "no cells"
    step = f", every {abs(coord[1] - coord[0]):g} m" if coord.size > 1 else ""
    return f"{coord.size} cells from {coord[0]:g} to {coord[-1]:g} m{step}"


def _regular_months(cube: xr.Dataset) -> xr.Dataset:
    """Reindex ``time`` to every month between its ends, when merging left months out."""
    if "time" not in cube.indexes:
        return cube
    index = cube.indexes["time"]
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        return cube
    months = pd.date_range(index[0], index[-1], freq="MS")
    if len(months) == len(index) or not index.isin(months).all():
        return cube  # already regular, or not month starts: validate says what is wrong
    return cube.reindex(time=months)
