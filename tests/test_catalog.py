"""The intake catalogs and ``open_cube``: every entry described, opened, or refused helpfully."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from dask.callbacks import Callback
from worlds import world

from geocryo.cube import CubeError, validate
from geocryo.io import open_zarr, write_zarr
from geocryo.io.catalog import (
    CubeSource,
    MissingDataError,
    catalog_path,
    open_catalog,
    open_cube,
)

# intake 2.0.9 warns about shell commands on every string parameter; geocryo.catalog silences
# it on import, but pytest resets warning filters around each test.
pytestmark = pytest.mark.filterwarnings("ignore:Shell command not executed:UserWarning")

REPO = Path(__file__).resolve().parent.parent

# Cells of the 8 x 8 synthetic grid where the real-data factories put their sites.
TOWER_CELL = (3, 4)
CALM_CELLS = ((1, 2), (6, 5))


def _walk(catalog, prefix: str = ""):
    """Every entry of ``catalog`` and of the catalogs nested in it, by dotted name."""
    for name in catalog:
        source = catalog[name]
        yield f"{prefix}{name}", source
        if source.container == "catalog":
            yield from _walk(source, f"{prefix}{name}.")


ENTRIES = dict(_walk(open_catalog()))
DATA_ENTRIES = sorted(name for name, source in ENTRIES.items() if source.container != "catalog")


# -- factories -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A data directory laid out like data/: synthetic/alaska.zarr and its truth beside it."""
    root = tmp_path_factory.mktemp("data")
    cube, truth = world("two_years", load=False)
    write_zarr(cube, root / "synthetic" / "alaska.zarr", progress=False)
    write_zarr(truth, root / "synthetic" / "alaska-truth.zarr", progress=False)
    return root


@pytest.fixture(scope="module")
def store(data_dir) -> Path:
    return data_dir / "synthetic" / "alaska.zarr"


@pytest.fixture(scope="module")
def stored(store) -> xr.Dataset:
    return open_zarr(store)


@pytest.fixture(scope="module")
def latlon(stored) -> tuple[np.ndarray, np.ndarray]:
    return stored["lat"].values, stored["lon"].values


@pytest.fixture(scope="module")
def geocryoai_csv(tmp_path_factory) -> Path:
    """A GeoCryoAI-style monthly table: two pixels near Toolik, two months."""
    rows = [
        ("2015-07-01", 68.630, -149.600, 42.0, -2.5, 18.0),
        ("2015-08-01", 68.630, -149.600, 55.0, -1.0, 25.0),
        ("2015-07-01", 68.640, -149.570, 38.0, -3.0, 12.0),
        ("2015-08-01", 68.640, -149.570, 50.0, -1.5, 15.0),
    ]
    table = pd.DataFrame(rows, columns=["datetime", "lat", "lon", "alt", "fc", "fch4"])
    path = tmp_path_factory.mktemp("geocryoai") / "geocryoai.csv"
    table.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def ameriflux_csv(tmp_path_factory) -> Path:
    """A BASE half-hourly file for January and February 2001: FC 2.0 then -3.0 umol m-2 s-1,
    FCH4 30 then 10 nmol m-2 s-1, every tenth record missing (-9999)."""
    start = pd.date_range("2001-01-01", "2001-02-28 23:30", freq="30min")
    january = start.month == 1
    fc = np.where(january, 2.0, -3.0)
    fch4 = np.where(january, 30.0, 10.0)
    ts = np.where(january, -12.0, -15.0)
    gaps = np.arange(len(start)) % 10 == 0
    table = pd.DataFrame(
        {
            "TIMESTAMP_START": start.strftime("%Y%m%d%H%M"),
            "TIMESTAMP_END": (start + pd.Timedelta("30min")).strftime("%Y%m%d%H%M"),
            "FC": np.where(gaps, -9999.0, fc),
            "FCH4": np.where(gaps, -9999.0, fch4),
            "TS_1_1_1": ts,
        }
    )
    path = tmp_path_factory.mktemp("ameriflux") / "AMF_US-Tst_BASE_HH_1-5.csv"
    with path.open("w") as file:
        file.write("# Site: US-Tst\n# Version: 1-5\n")
        table.to_csv(file, index=False)
    return path


@pytest.fixture(scope="module")
def calm_csv(tmp_path_factory, latlon) -> Path:
    """Two CALM sites in two cells of the synthetic grid, thaw depths for 2000 and 2001."""
    lat, lon = latlon
    (a, b) = CALM_CELLS
    rows = [
        ("U1", lat[a], lon[a], 2000, 41.0),
        ("U1", lat[a], lon[a], 2001, 47.0),
        ("U2", lat[b], lon[b], 2000, 88.0),
        ("U2", lat[b], lon[b], 2001, "inundated"),
    ]
    table = pd.DataFrame(rows, columns=["site", "lat", "lon", "year", "alt"])
    path = tmp_path_factory.mktemp("calm") / "calm.csv"
    table.to_csv(path, index=False)
    return path


@pytest.fixture
def recipes(store, geocryoai_csv, ameriflux_csv, calm_csv, latlon) -> dict[str, dict]:
    """The parameters that open each data entry on the test's files."""
    lat, lon = latlon
    site = {"lat": float(lat[TOWER_CELL]), "lon": float(lon[TOWER_CELL])}
    on_store = {"store": str(store)}
    return {
        "synthetic.alaska": on_store,
        "synthetic.alaska_truth": on_store,
        "in_situ.synthetic": on_store,
        "remote_sensing.synthetic": on_store,
        "process_models.synthetic": on_store,
        "in_situ.geocryoai": {"path": str(geocryoai_csv)},
        "in_situ.ameriflux": {"path": str(ameriflux_csv), "grid": str(store), **site},
        "in_situ.calm": {"path": str(calm_csv), "grid": str(store)},
    }


#: What the missing-data message of each entry must name: what to get, and from where.
DOWNLOADS = {
    "synthetic.alaska": "geocryo synth",
    "synthetic.alaska_truth": "geocryo synth",
    "in_situ.synthetic": "geocryo synth",
    "remote_sensing.synthetic": "geocryo synth",
    "process_models.synthetic": "geocryo synth",
    "in_situ.geocryoai": "https://doi.org/10.3334/ORNLDAAC/2371",
    "in_situ.ameriflux": "https://ameriflux.lbl.gov",
    "in_situ.calm": "https://www2.gwu.edu/~calm/data/north.htm",
}


def _units(ds: xr.Dataset) -> dict[str, str]:
    return {str(name): var.attrs["units"] for name, var in ds.data_vars.items()}


def _is_lazy(ds: xr.Dataset) -> bool:
    return all(var.chunks is not None for var in ds.data_vars.values())


# -- the catalog as a whole ------------------------------------------------------------------


def test_master_catalog_nests_one_catalog_per_modality(monkeypatch):
    monkeypatch.delenv("GEOCRYO_CATALOG", raising=False)
    nested = sorted(name for name, source in ENTRIES.items() if source.container == "catalog")
    assert nested == ["in_situ", "process_models", "remote_sensing", "synthetic"]
    assert DATA_ENTRIES == sorted(DOWNLOADS)
    assert catalog_path() == REPO / "catalogs" / "geocryo.yaml"


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_every_entry_is_described(name):
    info = ENTRIES[name].describe()
    assert len(info["description"].split()) >= 8, f"{name}: write a real description"
    metadata = info["metadata"]
    assert metadata.get("modality"), f"{name}: metadata needs a modality"
    if ENTRIES[name].container == "catalog":
        return
    for key in ("source", "variables", "spatial_coverage", "temporal_coverage", "citation"):
        assert metadata.get(key), f"{name}: metadata needs {key!r}"
    if not name.endswith(("synthetic", "alaska", "alaska_truth")):
        assert metadata.get("doi"), f"{name}: real data need a DOI to cite"
    assert DOWNLOADS[name] in info["args"]["download_hint"]


# -- every data entry opens ------------------------------------------------------------------


@pytest.mark.parametrize("name", DATA_ENTRIES)
def test_every_entry_opens_lazily_with_the_units_it_declares(name, recipes):
    source = open_catalog()[name](**recipes[name])
    info = source.discover()
    ds = source.to_dask()
    assert _is_lazy(ds)
    validate(ds)
    assert info["dims"] == dict(ds.sizes)
    assert set(info["data_vars"]) == set(ds.data_vars)
    assert _units(ds) == source.metadata["variables"]


def test_synthetic_entries_read_the_store_and_its_truth(store, data_dir, stored):
    cat = open_catalog()
    cube = cat.synthetic.alaska(store=str(store)).to_dask()
    xr.testing.assert_identical(cube, stored)
    truth = cat.synthetic.alaska_truth(store=str(store)).read()
    assert not _is_lazy(truth)
    xr.testing.assert_identical(truth, open_zarr(data_dir / "synthetic" / "alaska-truth.zarr"))
    # The truth is complete where the in situ targets are sparse.
    assert truth["alt"].notnull().all()
    assert float(cube["alt"].notnull().mean()) < 0.5


def test_the_data_directory_comes_from_geocryo_data(monkeypatch, data_dir, store, stored):
    monkeypatch.setenv("GEOCRYO_DATA", str(data_dir))
    source = open_catalog().in_situ.synthetic()
    assert source.urlpath == str(store)
    xr.testing.assert_identical(source.to_dask(), stored[["alt", "ch4_flux", "co2_flux"]])
    truth = open_catalog().synthetic.alaska_truth()
    assert truth.urlpath == str(data_dir / "synthetic" / "alaska-truth.zarr")
    # The store parameter wins over the environment.
    elsewhere = open_catalog().synthetic.alaska(store="/elsewhere/cube.zarr")
    assert elsewhere.urlpath == "/elsewhere/cube.zarr"


def test_without_geocryo_data_the_store_is_in_the_repository(monkeypatch):
    monkeypatch.delenv("GEOCRYO_DATA", raising=False)
    cat = open_catalog()
    assert cat.synthetic.alaska().urlpath == str(REPO / "data" / "synthetic" / "alaska.zarr")
    assert cat.synthetic.alaska_truth().urlpath == str(
        REPO / "data" / "synthetic" / "alaska-truth.zarr"
    )
    assert cat.in_situ.calm().urlpath == str(REPO / "data" / "in_situ" / "calm.csv")


@pytest.mark.parametrize("name", DATA_ENTRIES)
def test_missing_data_say_what_to_download_and_where_to_put_it(name, monkeypatch, tmp_path):
    monkeypatch.setenv("GEOCRYO_DATA", str(tmp_path))
    source = open_catalog()[name]()
    with pytest.raises(MissingDataError) as caught:
        source.to_dask()
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert DOWNLOADS[name] in message
    assert str(tmp_path) in message  # where it was looked for, under GEOCRYO_DATA


def test_a_reader_without_its_grid_store_says_how_to_build_it(tmp_path, calm_csv):
    source = open_catalog().in_situ.calm(path=str(calm_csv), grid=str(tmp_path / "no.zarr"))
    with pytest.raises(MissingDataError, match="geocryo synth"):
        source.discover()


# -- the real-data entries put numbers in the right cells ------------------------------------


def test_ameriflux_monthly_means_land_in_the_tower_cell(recipes):
    ds = open_catalog().in_situ.ameriflux(**recipes["in_situ.ameriflux"]).read()
    iy, ix = TOWER_CELL
    tower = ds.isel(y=iy, x=ix)
    np.testing.assert_allclose(tower["co2_flux"].values, [2.0, -3.0])
    np.testing.assert_allclose(tower["ch4_flux"].values, [30.0, 10.0])
    np.testing.assert_allclose(tower["soil_temperature"].values, [-12.0, -15.0])
    assert int(ds["co2_flux"].notnull().sum()) == 2  # NaN everywhere but the tower
    assert ds["co2_flux"].attrs["modality"] == "in_situ"


def test_calm_thaw_depths_land_in_august_of_each_year(recipes, stored):
    ds = open_catalog().in_situ.calm(**recipes["in_situ.calm"]).read()
    (a, b) = CALM_CELLS
    august = ds["alt"].sel(time=["2000-08-01", "2001-08-01"])
    np.testing.assert_allclose(august.isel(y=a[0], x=a[1]).values, [41.0, 47.0])
    np.testing.assert_allclose(august.isel(y=b[0], x=b[1]).values, [88.0, np.nan])
    assert int(ds["alt"].notnull().sum()) == 3
    np.testing.assert_array_equal(ds["y"].values, stored["y"].values)


def test_geocryoai_is_model_output_on_its_own_one_km_grid(recipes):
    ds = open_catalog().in_situ.geocryoai(**recipes["in_situ.geocryoai"]).read()
    assert {var.attrs["modality"] for var in ds.data_vars.values()} == {"process_model"}
    np.testing.assert_allclose(np.abs(np.diff(ds["x"].values)), 1000.0)
    july = ds.sel(time="2015-07-01")
    np.testing.assert_allclose(np.sort(july["alt"].values[july["alt"].notnull().values]), [38, 42])
    np.testing.assert_allclose(float(july["co2_flux"].mean()), -2.75)


# -- modality filters ------------------------------------------------------------------------


def test_modality_entries_split_the_store_without_overlap(store, stored):
    cat = open_catalog()
    parts = {
        name: set(cat[name](store=str(store)).to_dask().data_vars)
        for name in ("in_situ.synthetic", "remote_sensing.synthetic", "process_models.synthetic")
    }
    of = {}  # the store's variables by modality
    for name, var in stored.data_vars.items():
        of.setdefault(var.attrs["modality"], set()).add(name)
    assert parts["in_situ.synthetic"] == of["in_situ"] == {"alt", "ch4_flux", "co2_flux"}
    assert parts["remote_sensing.synthetic"] == of["remote_sensing"] | of["static"]
    assert parts["process_models.synthetic"] == of["process_model"] | of["forcing"]
    assert "hyperspectral_reflectance" in parts["remote_sensing.synthetic"]
    assert set.union(*parts.values()) == set(stored.data_vars)
    assert sum(map(len, parts.values())) == len(stored.data_vars)


def test_cube_source_keeps_variables_by_name_or_modality(store):
    picked = CubeSource(store, variables=["lst"], modalities=["static"]).to_dask()
    assert set(picked.data_vars) == {"lst", "elevation", "wetland_fraction", "soil_organic_carbon"}
    with pytest.raises(ValueError, match="unknown modality 'satellite'"):
        CubeSource(store, modalities=["satellite"])
    with pytest.raises(KeyError, match="'lai'"):
        CubeSource(store, variables=["lai"]).to_dask()
    with pytest.raises(TypeError, match="no reader"):
        CubeSource(store, month=8)


# -- open_cube -------------------------------------------------------------------------------


def test_open_cube_is_the_whole_store_and_reads_nothing(store, stored):
    tasks = []
    with Callback(pretask=lambda key, dask_graph, state: tasks.append(key)):
        cube = open_cube(store=str(store))
    assert tasks == []  # nothing computed: only metadata was read
    assert _is_lazy(cube)
    validate(cube)
    xr.testing.assert_identical(cube[sorted(cube.data_vars)], stored[sorted(stored.data_vars)])


def test_open_cube_merges_real_observations_with_the_synthetic_modalities(
    monkeypatch, data_dir, calm_csv, stored
):
    monkeypatch.setenv("GEOCRYO_DATA", str(data_dir))  # the synthetic store, and CALM's grid
    cube = open_cube(
        ["in_situ.calm", "remote_sensing.synthetic", "process_models.synthetic"],
        path=str(calm_csv),
    )
    assert _is_lazy(cube)
    # CALM spans 2000-08 to 2001-08; joined with the synthetic 2000-01 to 2001-12, the
    # months CALM lacks are NaN.
    np.testing.assert_array_equal(cube["time"].values, stored["time"].values)
    (a, _) = CALM_CELLS
    alt = cube["alt"].isel(y=a[0], x=a[1])
    assert float(alt.sel(time="2000-08-01")) == 41.0
    assert int(cube["alt"].notnull().sum()) == 3
    xr.testing.assert_equal(cube["lst"], stored["lst"])
    assert cube["lst"].attrs == stored["lst"].attrs


def test_open_cube_joins_months_and_leaves_the_gaps_nan(tmp_path, stored):
    spring = stored[["lst"]].isel(time=slice(0, 3))  # 2000-01 to 2000-03
    autumn = stored[["ndvi"]].isel(time=slice(20, 24))  # 2001-09 to 2001-12
    paths = [tmp_path / "spring.zarr", tmp_path / "autumn.zarr"]
    write_zarr(spring, paths[0], progress=False)
    write_zarr(autumn, paths[1], progress=False)
    cube = open_cube([CubeSource(paths[0]), CubeSource(paths[1])])
    np.testing.assert_array_equal(cube["time"].values, stored["time"].values)
    xr.testing.assert_equal(cube["lst"].isel(time=slice(0, 3)), spring["lst"])
    assert cube["lst"].isel(time=slice(3, None)).isnull().all()
    xr.testing.assert_equal(cube["ndvi"].isel(time=slice(20, None)), autumn["ndvi"])
    assert cube["ndvi"].isel(time=slice(0, 20)).isnull().all()


def test_open_cube_refuses_mismatched_grids(tmp_path, store, stored):
    shifted = stored.assign_coords(x=stored["x"] + 5000.0)
    other = write_zarr(shifted, tmp_path / "shifted.zarr", progress=False)
    cat = open_catalog()
    with pytest.raises(CubeError, match="different grids") as caught:
        open_cube(
            [
                cat.in_situ.synthetic(store=str(store)),
                cat.process_models.synthetic(store=str(other)),
            ]
        )
    assert "in_situ.synthetic" in str(caught.value)
    assert "process_models.synthetic" in str(caught.value)


def test_open_cube_refuses_a_variable_from_two_entries(store):
    with pytest.raises(CubeError, match=r"from both 'synthetic\.alaska' and 'in_situ\.synthetic'"):
        open_cube(["synthetic.alaska", "in_situ.synthetic"], store=str(store))


def test_open_cube_refuses_parameters_no_entry_declares(store):
    with pytest.raises(TypeError, match=r"\['stroe'\]"):
        open_cube(stroe=str(store))


def test_open_catalog_says_where_the_catalogs_are(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="pip install -e"):
        open_catalog(tmp_path / "nowhere.yaml")
    monkeypatch.setenv("GEOCRYO_CATALOG", str(REPO / "catalogs" / "in_situ.yaml"))
    assert sorted(open_catalog()) == ["ameriflux", "calm", "geocryoai", "synthetic"]
