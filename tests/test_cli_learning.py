"""The learning subcommands of the command line: fit, predict, evaluate on a tiny cube."""

import json

import numpy as np
import pytest

import geocryo
from geocryo.cli import main

# A tiny world and a tiny network: the round trip is about the plumbing, not the skill.
# (Four years of 8 x 8 cells leave SAR and SMAP unobserved in training; fit says so.)
pytestmark = pytest.mark.filterwarnings("ignore:preprocess.*no observed value:UserWarning")
TINY = ["--lookback", "4", "--patch", "8", "--features", "4", "--layers", "1"]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    cube = root / "alaska.zarr"
    args = ["synth", "--out", str(cube), "--ny", "8", "--nx", "8"]
    assert main([*args, "--start", "2000-01", "--end", "2003-12", "--quiet"]) == 0
    return root, cube


@pytest.fixture(scope="module")
def fitted(stores):
    root, cube = stores
    model = root / "model"
    args = ["fit", "--cube", str(cube), "--out", str(model), "--mode", "teacher_forcing"]
    assert main([*args, "--epochs", "1", "--ensemble", "2", *TINY, "--quiet"]) == 0
    return model


def test_fit_saves_a_model(fitted):
    # What the model directory says; predict and evaluate below load it for real.
    settings = json.loads((fitted / "model.json").read_text())
    assert settings["mode"] == "teacher_forcing" and settings["members"] == 2
    assert settings["spec"]["lookback"] == 4 and settings["network"]["features"] == 4
    assert (fitted / "params.msgpack").stat().st_size > 1000


def test_predict_writes_a_store_with_units(stores, fitted, capsys):
    root, cube_path = stores
    out = root / "prediction.zarr"
    args = ["predict", "--model", str(fitted), "--cube", str(cube_path), "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    assert "wrote" in capsys.readouterr().out
    prediction = geocryo.open_zarr(out, validate_cube=False)
    cube = geocryo.open_zarr(cube_path)
    for name, units in geocryo.TARGETS.items():
        assert prediction[name].attrs["units"] == units
        assert prediction[f"{name}_std"].attrs["units"] == units
        assert prediction[name].dims == ("time", "y", "x")
    np.testing.assert_array_equal(prediction.time.values, cube.time.values)
    # No window before lookback + lead months; forecasts everywhere after.
    assert prediction.alt.isel(time=slice(0, 4)).isnull().all()
    assert prediction.alt.isel(time=slice(4, None)).notnull().all()


def test_evaluate_prints_the_table_and_writes_a_report(stores, fitted, capsys):
    root, cube_path = stores
    out = root / "report"
    args = ["evaluate", "--model", str(fitted), "--cube", str(cube_path), "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    printed = capsys.readouterr().out
    # The truth beside the cube store is found, so both scopes are scored.
    assert "## sites" in printed and "## field" in printed
    assert "| teacher_forcing |" in printed and "| persistence |" in printed
    report = (out / "report.md").read_text()
    assert "![RMSE per model and target](skill.png)" in report
    assert (out / "skill.png").is_file() and (out / "loss.png").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fit", "--out", "m"], "no input cube: pass --cube PATH"),
        (["fit", "--cube", "missing.zarr", "--out", "m"], "no store at"),
        (["fit", "--cube", "a.zarr", "--entry", "x", "--out", "m"], "not both"),
        (["predict", "--model", "nowhere", "--cube", "a.zarr", "--out", "p.zarr"], "model.json"),
        (["evaluate", "--model", "nowhere", "--cube", "a.zarr"], "not a saved geocryo model"),
    ],
)
def test_clear_errors(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_fit_refuses_to_overwrite_a_model(stores, fitted, capsys):
    _, cube = stores
    with pytest.raises(SystemExit):
        main(["fit", "--cube", str(cube), "--out", str(fitted)])
    assert "--overwrite" in capsys.readouterr().err


def test_unknown_catalog_entry(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--entry", "synthetic.nowhere", "--out", "m"])
    assert "has no entry 'synthetic.nowhere'" in capsys.readouterr().err
