"""The cube's conventions: what a geocryo cube is, checked, and split by role.

A cube is one :class:`xarray.Dataset` on a monthly grid: dims ``time`` (month starts), ``y`` and
``x`` (projected metres), an optional extra dim per variable (``band``, ``depth``), CF ``units``
on every variable, a ``modality`` attribute on every variable, and NaN as the only missing marker.
The targets are :data:`TARGETS`; every other data variable is a feature.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "BOUNDS",
    "MODALITIES",
    "OBSERVATION_ERROR_ATTRS",
    "SENTINELS",
    "TARGETS",
    "CubeError",
    "features",
    "observation_variance",
    "targets",
    "validate",
]

#: The three standard targets and their units.
TARGETS: dict[str, str] = {
    "alt": "cm",
    "ch4_flux": "nmol m-2 s-1",
    "co2_flux": "umol m-2 s-1",
}

#: Each target's physical lower bound, in its units (None: unbounded). Thaw depth cannot be
#: negative; methane flux is emission in the default (set ``FitConfig(bounds={"ch4_flux": None})``
#: for sites that take methane up); CO2 flux is net exchange, of either sign.
BOUNDS: dict[str, float | None] = {"alt": 0.0, "ch4_flux": 0.0, "co2_flux": None}

#: Attributes of an in situ target that declare its measurement error: a standard deviation in
#: the target's units, and a share of the value (the error's variance is the sum of both
#: squared). Calibration and scoring against observations use them; absent means 0.
OBSERVATION_ERROR_ATTRS: tuple[str, str] = ("observation_error", "observation_error_fraction")

#: Spellings of the target units that mean the same thing.
_UNIT_ALIASES: dict[str, set[str]] = {
    "alt": {"cm", "centimeter", "centimetre", "centimeters", "centimetres"},
    "ch4_flux": {"nmol m-2 s-1", "nmol/m2/s", "nmol m^-2 s^-1", "nmol.m-2.s-1"},
    "co2_flux": {
        "umol m-2 s-1",
        "µmol m-2 s-1",
        "μmol m-2 s-1",
        "umol/m2/s",
        "umol m^-2 s^-1",
        "umol.m-2.s-1",
    },
}

#: Allowed values of a variable's ``modality`` attribute.
MODALITIES: tuple[str, ...] = ("in_situ", "remote_sensing", "process_model", "forcing", "static")

#: Fill values that data sets often use in place of NaN; ``validate(..., scan=True)`` finds them.
SENTINELS: tuple[float, ...] = (-9999.0, -999.0, -99999.0, 9.969209968386869e36, 1e20, -1e20)

_SPATIAL = ("y", "x")


class CubeError(ValueError):
    """A dataset breaks one of the cube's conventions.

    Parameters
    ----------
    variable
        Name of the offending variable, coordinate or dim (``"<dataset>"`` for the whole cube).
    rule
        The convention that is broken, and how to fix it.
    """

    def __init__(self, variable: str, rule: str) -> None:
        self.variable = variable
        self.rule = rule
        super().__init__(f"{variable!r}: {rule}")


def _check_time(ds: xr.Dataset) -> None:
    if "time" not in ds.coords:
        raise CubeError("time", "the cube has a 'time' dim but no 'time' coordinate")
    time = ds["time"]
    if time.ndim != 1:
        raise CubeError("time", f"must be 1-D, got dims {time.dims}")
    if not np.issubdtype(time.dtype, np.datetime64):
        raise CubeError(
            "time",
            f"must be datetime64 month starts, got dtype {time.dtype}; "
            "decode times (xr.decode_cf) or convert cftime with .convert_calendar('standard')",
        )
    index = pd.DatetimeIndex(time.values)
    if len(index) == 0:
        raise CubeError("time", "is empty")
    if index.hasnans:
        raise CubeError("time", "contains NaT")
    if not index.is_monotonic_increasing or not index.is_unique:
        raise CubeError("time", "must be sorted and unique; use ds.sortby('time')")
    if not (index == index.to_period("M").to_timestamp()).all():
        bad = index[index != index.to_period("M").to_timestamp()][0]
        raise CubeError(
            "time",
            f"must hold month starts (first day, 00:00); found {bad}; "
            "resample with ds.resample(time='MS').mean()",
        )
    expected = pd.date_range(index[0], periods=len(index), freq="MS")
    if not (index == expected).all():
        missing = expected.difference(index)
        where = f"; first gap at {missing[0]:%Y-%m}" if len(missing) else ""
        raise CubeError(
            "time",
            "must be a regular monthly axis with no missing months" + where + "; "
            "reindex to pd.date_range(start, end, freq='MS') so gaps become NaN",
        )


def _check_space(ds: xr.Dataset) -> None:
    for dim in _SPATIAL:
        if dim not in ds.dims:
            raise CubeError(dim, f"the cube has no {dim!r} dim; a cube needs dims ('y', 'x')")
        if dim not in ds.coords:
            raise CubeError(dim, f"the {dim!r} dim needs a 1-D coordinate in projected metres")
        coord = ds[dim]
        if not np.issubdtype(coord.dtype, np.number):
            raise CubeError(dim, f"coordinate must be numeric metres, got dtype {coord.dtype}")
        values = np.asarray(coord.values, dtype=float)
        steps = np.diff(values)
        if len(steps) and not (np.all(steps > 0) or np.all(steps < 0)):
            raise CubeError(dim, "coordinate must be strictly monotonic")
    for name in ("lat", "lon"):
        if name in ds.coords and set(ds[name].dims) != set(_SPATIAL):
            raise CubeError(name, f"must be a 2-D coordinate on ('y', 'x'), got {ds[name].dims}")


def _check_variable(name: str, var: xr.DataArray) -> None:
    if not set(_SPATIAL) <= set(var.dims):
        raise CubeError(name, f"must have dims 'y' and 'x', got {var.dims}")
    if "time" in var.dims and var.dims[0] != "time":
        raise CubeError(name, f"'time' must be its first dim, got {var.dims}; use .transpose")
    if not np.issubdtype(var.dtype, np.floating):
        raise CubeError(
            name,
            f"must be floating point with NaN for missing values, got dtype {var.dtype}; "
            "cast with .astype('float32') after masking fill values to NaN",
        )
    units = var.attrs.get("units")
    if not isinstance(units, str) or not units.strip():
        raise CubeError(name, "has no 'units' attribute; set a UDUNITS string, '1' if unitless")
    modality = var.attrs.get("modality")
    if modality not in MODALITIES:
        raise CubeError(
            name, f"'modality' attribute is {modality!r}; it must be one of {', '.join(MODALITIES)}"
        )
    for key in ("_FillValue", "missing_value"):
        fill = var.attrs.get(key, var.encoding.get(key) if key == "missing_value" else None)
        if fill is not None and not np.all(np.isnan(np.asarray(fill, dtype=float))):
            raise CubeError(
                name,
                f"declares {key}={fill!r}; NaN is the only missing marker: "
                f"mask with ds[{name!r}].where(ds[{name!r}] != {fill!r}) and drop the attribute",
            )
    if name in TARGETS:
        if "time" not in var.dims:
            raise CubeError(name, "is a target and must have a 'time' dim")
        if units.strip() not in _UNIT_ALIASES[name]:
            raise CubeError(name, f"is a target in {TARGETS[name]!r}, but its units are {units!r}")


def _scan_values(ds: xr.Dataset) -> None:
    import dask

    checks = {}
    for name, var in ds.data_vars.items():
        # Compare in the variable's own dtype: 1e20 stored as float32 is not the float64 1e20.
        with np.errstate(over="ignore"):
            sentinels = np.asarray(SENTINELS).astype(var.dtype)
        checks[name] = (
            var.isin(sentinels[np.isfinite(sentinels)]).any(),
            np.isinf(var).any(),
            (var < 0).any() if name == "alt" else xr.DataArray(False),
        )
    (computed,) = dask.compute(checks)
    for name, (sentinel, inf, negative) in computed.items():
        if bool(sentinel):
            raise CubeError(
                name,
                f"holds a fill value from {SENTINELS}; NaN is the only missing marker: "
                "replace it with .where(var != fill)",
            )
        if bool(inf):
            raise CubeError(name, "holds infinite values; mask them to NaN")
        if bool(negative):
            raise CubeError(name, "thaw depth is negative somewhere; 'alt' is >= 0 (0 when frozen)")


def validate(ds: xr.Dataset, *, scan: bool = False) -> xr.Dataset:
    """Check that ``ds`` follows the cube conventions and return it unchanged.

    Parameters
    ----------
    ds
        The candidate cube.
    scan
        Also read the values (one pass over the data, with dask) to refuse common fill values
        such as -9999, infinities and negative thaw depths. The default checks only metadata and
        computes nothing.

    Returns
    -------
    xr.Dataset
        ``ds`` itself, so that ``validate`` can be chained.

    Raises
    ------
    CubeError
        Naming the first variable that breaks a rule, and the rule.
    """
    if not isinstance(ds, xr.Dataset):
        raise CubeError("<dataset>", f"a cube is an xarray.Dataset, got {type(ds).__name__}")
    if not ds.data_vars:
        raise CubeError("<dataset>", "has no data variables")
    _check_space(ds)
    if "time" in ds.dims:
        _check_time(ds)
    for name, var in ds.data_vars.items():
        _check_variable(str(name), var)
    if scan:
        _scan_values(ds)
    return ds


def targets(ds: xr.Dataset) -> xr.Dataset:
    """The standard targets present in ``ds`` (``alt``, ``ch4_flux``, ``co2_flux``)."""
    return ds[[name for name in TARGETS if name in ds.data_vars]]


def features(ds: xr.Dataset) -> xr.Dataset:
    """Every data variable of ``ds`` that is not a target."""
    return ds[[name for name in ds.data_vars if name not in TARGETS]]


def observation_variance(attrs: dict, value):
    """The measurement error variance of an observation of ``value`` (array or number).

    ``attrs`` are the target's (:data:`OBSERVATION_ERROR_ATTRS`):
    ``observation_error ** 2 + (observation_error_fraction * value) ** 2``; 0 where the target
    declares none.
    """
    sd = float(attrs.get(OBSERVATION_ERROR_ATTRS[0], 0.0) or 0.0)
    share = float(attrs.get(OBSERVATION_ERROR_ATTRS[1], 0.0) or 0.0)
    return sd**2 + (share * value) ** 2
