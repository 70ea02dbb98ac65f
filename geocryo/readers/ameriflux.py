"""Reader of AmeriFlux BASE half-hourly (or hourly) files as monthly means at the tower's cell."""

from __future__ import annotations

import re
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..grid import locate
from ._common import (
    as_values,
    assemble,
    binned_mean,
    check_grid,
    find_columns,
    grid_crs,
    match_columns,
    month_starts,
    parse_times,
    require_file,
    row_mean,
    time_axis,
)

__all__ = ["read_ameriflux"]

_HINT = (
    "download the site's AmeriFlux BASE file (AMF_<site>_BASE_HH_<version>.csv) "
    "from https://ameriflux.lbl.gov (Data > Download Data), unzip it and pass the CSV"
)

# A variable with up to three position qualifiers (FC, FC_1_1_1, TS_2); not _F, _PI, _SD, _N.
_QUALIFIED = re.compile(r"^(FC|FCH4|TS)((?:_\d+){0,3})$")
_TARGETS = {"FC": "co2_flux", "FCH4": "ch4_flux", "TS": "soil_temperature"}


def read_ameriflux(
    path: str | PathLike[str],
    grid: xr.Dataset,
    lat: float | None = None,
    lon: float | None = None,
    site: str | None = None,
    min_coverage: float = 0.5,
) -> xr.Dataset:
    """Read an AmeriFlux BASE half-hourly (or hourly) CSV as monthly means at the site's cell.

    The file may open with comment lines (``# Site: US-Xxx``, ``# Version: ...``), then a header
    with ``TIMESTAMP_START`` and ``TIMESTAMP_END`` (local standard time, YYYYMMDDHHMM) and
    variables in AmeriFlux units, -9999 where missing. Read are:

    - ``FC`` (umol CO2 m-2 s-1, positive to the atmosphere) as ``co2_flux``;
    - ``FCH4`` (nmol CH4 m-2 s-1) as ``ch4_flux``;
    - ``TS`` soil temperatures (degC) as ``soil_temperature``: the sensors at the shallowest
      depth index (``V`` in ``TS_H_V_R``, or ``N`` in the older ``TS_N``), averaged record by
      record over horizontal positions and replicates. Deeper sensors are ignored, so that the
      monthly value is one depth's, not a mix that changes as sensors fail.

    Where a variable comes with position qualifiers only (``FC_1_1_1``, ``FC_2_1_1``), the
    replicates are averaged record by record. Gap-filled (``_F``), PI (``_PI``) and statistics
    (``_SD``, ``_N``) columns are not used: only measured records count. Variables the file
    lacks are left out of the cube.

    A record belongs to the month of its ``TIMESTAMP_START``. A month's mean is kept only if at
    least ``min_coverage`` of the month's records (days in the month x records per day, so rows
    absent from the file count as missing) hold a valid value; otherwise it is NaN.

    Parameters
    ----------
    path
        The BASE CSV file.
    grid
        Target grid with ``y``, ``x`` coordinates in EPSG:3338 metres; its ``time``, if any,
        becomes the output's (otherwise the months the file spans).
    lat, lon
        The site's coordinates in degrees (BASE files do not carry them: take them from the
        site's page on ameriflux.lbl.gov).
    site
        Site ID for the ``source`` attribute; defaults to the file's ``# Site:`` line or its
        name (``AMF_US-Xxx_BASE_...``).
    min_coverage
        Fraction (0 to 1) of a month's records that must be valid for its mean to be kept.

    Returns
    -------
    xr.Dataset
        A cube with ``co2_flux``, ``ch4_flux`` and ``soil_temperature`` (those the file has;
        ``modality="in_situ"``), NaN everywhere but the site's cell.

    Raises
    ------
    ValueError
        If ``lat``/``lon`` are missing or the site lies outside the grid, columns are missing,
        no timestamp can be read, the time step cannot be worked out, or no month holds a
        valid value.
    FileNotFoundError
        If ``path`` does not exist (the message says where to download BASE files).
    """
    if lat is None or lon is None:
        raise ValueError(
            "read_ameriflux needs the site's coordinates: pass lat= and lon= in degrees "
            "(AmeriFlux BASE CSVs do not carry them; see the site's page on ameriflux.lbl.gov)"
        )
    if not 0.0 <= min_coverage <= 1.0:
        raise ValueError(f"min_coverage is a fraction between 0 and 1, got {min_coverage}")
    check_grid(grid)
    path = require_file(path, _HINT)
    header, skip = _comment_header(path)
    site = site or header.get("site") or _site_from_name(path.name) or path.stem
    where = f"{path.name} (AmeriFlux {site})"

    table = pd.read_csv(path, skiprows=skip, usecols=_is_ameriflux_column, dtype=str)
    cols = find_columns(table.columns, {"TIMESTAMP_START": ("timestamp_start",)}, where)
    groups = _groups(table.columns)
    if not groups:
        raise ValueError(
            f"{where}: none of the columns FC, FCH4 or TS_* (soil temperature) found; "
            "is this an AmeriFlux BASE file?"
        )

    start = parse_times(table[cols["TIMESTAMP_START"]])
    ok = ~pd.isna(start)
    if not ok.any():
        raise ValueError(
            f"{where}: no TIMESTAMP_START could be read; BASE files stamp records as "
            "YYYYMMDDHHMM, e.g. 201601010030"
        )
    table, start = table[ok], pd.DatetimeIndex(start[ok])
    first = ~start.duplicated()
    table, start = table[first], start[first]
    step = _time_step(table, start, where)
    months = month_starts(start)

    try:
        iy, ix = locate(grid, lat, lon, crs=grid_crs(grid))
    except ValueError as err:
        raise ValueError(f"{where}: the site {err}") from None
    time = time_axis(grid, months, where)
    it = time.get_indexer(months)
    per_month = time.days_in_month.to_numpy() * (1440 // step)

    fields = {}
    for name, columns in groups.items():
        record = row_mean(np.column_stack([as_values(table[c]) for c in columns]))
        field = np.full((len(time), grid.sizes["y"], grid.sizes["x"]), np.nan, dtype=np.float32)
        field[:, iy[0], ix[0]] = binned_mean(it, record, len(time), min_coverage * per_month)
        fields[name] = field
    attrs = {"modality": "in_situ", "source": f"AmeriFlux BASE {site}"}
    empty = f"no month has {min_coverage:.0%} of its records valid; see min_coverage"
    history = f"read_ameriflux({path.name!r}, min_coverage={min_coverage})"
    out = assemble(grid, time, fields, attrs, where, history, empty)
    out.attrs.update(site=site, site_lat=float(lat), site_lon=float(lon))
    return out


def _is_ameriflux_column(name: str) -> bool:
    upper = name.strip().upper()
    return upper in ("TIMESTAMP_START", "TIMESTAMP_END") or bool(_QUALIFIED.match(upper))


def _groups(names: pd.Index) -> dict[str, list[str]]:
    """The columns that make each output variable: the bare name if present, else its
    replicates; for soil temperature, the shallowest depth index only."""
    found: dict[str, list[tuple[tuple[int, ...], str]]] = {}
    for name in names:
        match = _QUALIFIED.match(str(name).strip().upper())
        if match:
            index = tuple(int(i) for i in match.group(2).split("_")[1:])
            found.setdefault(match.group(1), []).append((index, name))
    groups = {}
    for base, entries in found.items():
        if base == "TS":
            depth = {name: _depth_index(index) for index, name in entries}
            shallowest = min(depth.values())
            groups["soil_temperature"] = [n for n, d in depth.items() if d == shallowest]
        else:
            bare = [name for index, name in entries if not index]
            groups[_TARGETS[base]] = bare or [name for _, name in entries]
    return {name: groups[name] for name in _TARGETS.values() if name in groups}


def _depth_index(index: tuple[int, ...]) -> int:
    # TS_H_V_R: V is the depth; TS_N: N is the depth rank; a bare TS is one sensor.
    if len(index) >= 2:
        return index[1]
    return index[0] if index else 0


def _comment_header(path: Path) -> tuple[dict[str, str], int]:
    """The ``# key: value`` lines atop the file (keys in lower case), and how many lines to skip."""
    header: dict[str, str] = {}
    skip = 0
    with path.open(encoding="utf-8", errors="replace") as file:
        for line in file:
            if not line.startswith("#"):
                break
            skip += 1
            key, sep, value = line[1:].partition(":")
            if sep:
                header[key.strip().lower()] = value.strip()
    return header, skip


def _site_from_name(name: str) -> str | None:
    match = re.match(r"AMF_([A-Za-z]{2}-[A-Za-z0-9]{3})_", name)
    return match.group(1) if match else None


def _time_step(table: pd.DataFrame, start: pd.DatetimeIndex, where: str) -> int:
    """Minutes per record, from TIMESTAMP_END - TIMESTAMP_START (or the spacing of starts)."""
    end_col = match_columns(table.columns, {"timestamp_end": "end"}).get("end")
    if end_col is not None:
        minutes = (parse_times(table[end_col]) - start) / pd.Timedelta(minutes=1)
    else:
        minutes = np.diff(start.sort_values().to_numpy()) / np.timedelta64(1, "m")
    minutes = np.asarray(minutes, dtype=float)
    minutes = minutes[np.isfinite(minutes) & (minutes > 0)]
    step = round(float(np.median(minutes))) if len(minutes) else 0
    if step <= 0 or 1440 % step:
        raise ValueError(
            f"{where}: cannot work out the record length from TIMESTAMP_START/TIMESTAMP_END "
            f"(got {step} min); BASE files are half-hourly (30) or hourly (60)"
        )
    return step
