"""The geocryo command line."""

from pathlib import Path

import pytest

import geocryo
from geocryo.cli import main, truth_path


def test_synth_writes_cube_and_truth_and_refuses_to_clobber(tmp_path, capsys):
    out = tmp_path / "alaska.zarr"
    args = [
        "synth",
        "--out",
        str(out),
        "--ny",
        "6",
        "--nx",
        "5",
        "--start",
        "2001-01",
        "--end",
        "2001-12",
        "--n-sites",
        "3",
        "--quiet",
    ]
    assert main(args) == 0
    cube = geocryo.open_zarr(out)
    truth = geocryo.open_zarr(truth_path(out))
    assert cube.sizes["time"] == 12 and (cube.sizes["y"], cube.sizes["x"]) == (6, 5)
    assert truth.alt.notnull().all()
    assert "wrote" in capsys.readouterr().out
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    assert "--overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in out.rglob("*")) == before
    assert main([*args, "--overwrite", "--seed", "1"]) == 0


def test_truth_path():
    assert truth_path(Path("data/a.zarr")).name == "a-truth.zarr"
