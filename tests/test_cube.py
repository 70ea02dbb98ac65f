"""The cube conventions: the synthetic cube passes, and each broken rule is refused by name."""

from __future__ import annotations

import re
from collections.abc import Callable

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from geocryo.cube import MODALITIES, TARGETS, CubeError, features, targets, validate


@pytest.fixture(scope="module")
def cube(small_cube) -> xr.Dataset:
    return small_cube[0]


def _explode(block: np.ndarray) -> np.ndarray:
    raise RuntimeError("this chunk must not be computed")


def poke(var: xr.DataArray, value: float, **index: int) -> xr.DataArray:
    """``var`` with ``value`` at one element (lazily when ``var`` is dask-backed)."""
    mask = np.zeros(var.shape, dtype=bool)
    mask[tuple(index.get(dim, 0) for dim in var.dims)] = True
    out = var.where(~xr.DataArray(mask, dims=var.dims), np.asarray(value, dtype=var.dtype))
    return out.astype(var.dtype).assign_attrs(var.attrs)


def with_attr(name: str, key: str, value) -> Callable[[xr.Dataset], xr.Dataset]:
    def change(ds: xr.Dataset) -> xr.Dataset:
        ds[name].attrs[key] = value
        return ds

    return change


def without_attr(name: str, key: str) -> Callable[[xr.Dataset], xr.Dataset]:
    def change(ds: xr.Dataset) -> xr.Dataset:
        del ds[name].attrs[key]
        return ds

    return change


def missing_value_encoded(ds: xr.Dataset) -> xr.Dataset:
    ds["snow_depth"].encoding["missing_value"] = -999.0
    return ds


def swap_y(ds: xr.Dataset) -> xr.Dataset:
    y = ds["y"].values.copy()
    y[[3, 4]] = y[[4, 3]]
    return ds.assign_coords(y=("y", y, ds["y"].attrs))


def alt_without_time(ds: xr.Dataset) -> xr.Dataset:
    ds["alt"] = ds["alt"].isel(time=0, drop=True)
    return ds


def lst_time_last(ds: xr.Dataset) -> xr.Dataset:
    ds["lst"] = ds["lst"].transpose("y", "time", "x")
    return ds


def ndvi_as_integers(ds: xr.Dataset) -> xr.Dataset:
    ds["ndvi"] = (ds["ndvi"].fillna(0) * 1000).astype("int16")
    return ds


def a_series_without_space(ds: xr.Dataset) -> xr.Dataset:
    attrs = {"units": "1", "modality": "in_situ"}
    return ds.assign(site_count=("time", np.zeros(ds.sizes["time"], "float32"), attrs))


BROKEN = {
    # name: (break the cube, variable named, words of the rule)
    "no units": (without_attr("lst", "units"), "lst", "no 'units' attribute"),
    "blank units": (with_attr("ndvi", "units", "  "), "ndvi", "no 'units' attribute"),
    "unknown modality": (with_attr("lst", "modality", "satellite"), "lst", "'satellite'"),
    "no modality": (without_attr("elevation", "modality"), "elevation", "one of in_situ"),
    "integer dtype": (ndvi_as_integers, "ndvi", "floating point.*int16"),
    "_FillValue": (with_attr("lst", "_FillValue", -9999.0), "lst", "_FillValue=-9999.0"),
    "missing_value attr": (with_attr("ch4_flux", "missing_value", 0.0), "ch4_flux", "NaN is"),
    "missing_value encoded": (missing_value_encoded, "snow_depth", "missing_value=-999.0"),
    "time as integers": (
        lambda ds: ds.assign_coords(time=np.arange(ds.sizes["time"])),
        "time",
        "datetime64.*int64",
    ),
    "unsorted time": (
        lambda ds: ds.isel(time=[1, 0, *range(2, ds.sizes["time"])]),
        "time",
        "sorted and unique",
    ),
    "repeated month": (lambda ds: ds.isel(time=[0, 0, 1, 2]), "time", "sorted and unique"),
    "missing month": (lambda ds: ds.drop_isel(time=5), "time", "first gap at 2000-06"),
    "mid-month stamps": (
        lambda ds: ds.assign_coords(time=ds["time"] + np.timedelta64(14, "D")),
        "time",
        "month starts.*2000-01-15",
    ),
    "no y dim": (lambda ds: ds.rename({"y": "row"}), "y", "no 'y' dim"),
    "no x dim": (lambda ds: ds.rename({"x": "col"}), "x", "no 'x' dim"),
    "no x coordinate": (lambda ds: ds.drop_vars("x"), "x", "1-D coordinate"),
    "text y coordinate": (
        lambda ds: ds.assign_coords(y=[f"row{i}" for i in range(ds.sizes["y"])]),
        "y",
        "numeric metres",
    ),
    "non-monotonic y": (swap_y, "y", "strictly monotonic"),
    "lat on one dim": (
        lambda ds: ds.assign_coords(lat=ds["lat"].isel(x=0, drop=True)),
        "lat",
        r"2-D coordinate on \('y', 'x'\)",
    ),
    "alt in metres": (with_attr("alt", "units", "m"), "alt", "target in 'cm'.*'m'"),
    "co2 in mg": (with_attr("co2_flux", "units", "mg m-2 d-1"), "co2_flux", "'umol m-2 s-1'"),
    "target without time": (alt_without_time, "alt", "target and must have a 'time' dim"),
    "time not first": (lst_time_last, "lst", "'time' must be its first dim"),
    "variable without y, x": (a_series_without_space, "site_count", "dims 'y' and 'x'"),
    "no data variables": (lambda ds: ds.drop_vars(list(ds.data_vars)), "<dataset>", "no data"),
}


def test_synthetic_cube_passes(cube: xr.Dataset, backend) -> None:
    ds = backend(cube)
    assert validate(ds) is ds
    assert validate(ds, scan=True) is ds
    # the scan must not refuse what is legitimate: CO2 uptake is negative, frozen ground is 0 cm
    assert float(ds["co2_flux"].min()) < 0
    assert float(ds["alt"].min()) == 0.0


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_rule_refuses_by_name(cube: xr.Dataset, case: str) -> None:
    change, variable, rule = BROKEN[case]
    broken = change(cube.copy())

    with pytest.raises(CubeError) as caught:
        validate(broken)

    assert caught.value.variable == variable
    assert str(caught.value).startswith(repr(variable))
    assert re.search(rule, caught.value.rule), caught.value.rule
    assert isinstance(caught.value, ValueError)


def test_validate_refuses_what_is_not_a_dataset(cube: xr.Dataset) -> None:
    with pytest.raises(CubeError, match=r"'<dataset>'.*got DataArray"):
        validate(cube["alt"])


@pytest.mark.parametrize(
    ("name", "units"),
    [
        ("alt", "centimetres"),
        ("alt", " cm "),
        ("ch4_flux", "nmol/m2/s"),
        ("ch4_flux", "nmol m^-2 s^-1"),
        ("co2_flux", "µmol m-2 s-1"),  # micro sign
        ("co2_flux", "μmol m-2 s-1"),  # Greek mu
        ("co2_flux", "umol.m-2.s-1"),
    ],
)
def test_target_unit_aliases_are_accepted(cube: xr.Dataset, name: str, units: str) -> None:
    validate(with_attr(name, "units", units)(cube.copy()))


def test_what_the_rules_allow(cube: xr.Dataset) -> None:
    # y may run south to north too, a NaN fill value is the convention, and a target may keep
    # more months than the features
    validate(cube.isel(y=slice(None, None, -1)))
    validate(with_attr("lst", "_FillValue", np.nan)(cube.copy()))
    assert TARGETS == {"alt": "cm", "ch4_flux": "nmol m-2 s-1", "co2_flux": "umol m-2 s-1"}


SCANNED = {
    # name: (variable, value, words of the rule)
    "-9999 in lst": ("lst", -9999.0, "fill value"),
    "-9999 in a static map": ("elevation", -9999.0, "fill value"),
    "netCDF default fill in bands": ("hyperspectral_reflectance", 9.969209968386869e36, "fill"),
    "CMIP 1e20 in float32": ("tcfm_co2_flux", 1e20, "fill value"),
    "+inf": ("soil_moisture", np.inf, "infinite"),
    "-inf": ("air_temperature", -np.inf, "infinite"),
    "negative thaw depth": ("alt", -2.0, "negative"),
}


@pytest.mark.parametrize("case", list(SCANNED))
def test_scan_finds_bad_values(cube: xr.Dataset, backend, case: str) -> None:
    name, value, rule = SCANNED[case]
    ds = backend(cube)
    ds[name] = poke(ds[name], value, time=7, y=5, x=4, band=10)
    assert ds[name].dtype == np.float32

    validate(ds)  # metadata is still fine
    with pytest.raises(CubeError, match=rule) as caught:
        validate(ds, scan=True)
    assert caught.value.variable == name


def test_validate_without_scan_computes_nothing(cube: xr.Dataset, task_counter) -> None:
    ds = cube.copy()
    lst = ds["lst"]
    ds["lst"] = lst.copy(data=da.map_blocks(_explode, lst.data, meta=np.array((), "float32")))

    with task_counter:
        validate(ds)
    assert task_counter.count == 0
    with pytest.raises(RuntimeError, match="must not be computed"):
        validate(ds, scan=True)


def test_targets_and_features_split_by_role(cube: xr.Dataset) -> None:
    target_vars = targets(cube)
    feature_vars = features(cube)

    assert list(target_vars.data_vars) == ["alt", "ch4_flux", "co2_flux"]
    assert set(target_vars.data_vars).isdisjoint(feature_vars.data_vars)
    assert set(target_vars.data_vars) | set(feature_vars.data_vars) == set(cube.data_vars)
    assert len(feature_vars.data_vars) == 15
    assert {feature_vars[name].attrs["modality"] for name in feature_vars.data_vars} == set(
        MODALITIES
    ) - {"in_situ"}
    # both keep the grid's coordinates
    for part in (target_vars, feature_vars):
        assert {"time", "y", "x", "lat", "lon"} <= set(part.coords)
    assert list(targets(cube.drop_vars("ch4_flux")).data_vars) == ["alt", "co2_flux"]
    assert list(targets(features(cube)).data_vars) == []
