"""Binder: ``binder/environment.yml`` pins what ``pyproject.toml`` pins, and ``postBuild`` runs
commands that exist."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from geocryo.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"

#: conda-forge names of packages whose PyPI names differ.
CONDA_TO_PYPI = {"dask-core": "dask", "cf_xarray": "cf-xarray", "matplotlib-base": "matplotlib"}
#: What the environment adds to run notebooks on Binder, beyond geocryo's dependencies.
NOTEBOOK_RUNTIME = {"pip", "jupyterlab", "ipykernel", "ipywidgets"}


def conda_specs(path: Path = BINDER / "environment.yml") -> dict[str, SpecifierSet]:
    """The environment's packages by canonical PyPI name, with their version specifiers."""
    env = yaml.safe_load(path.read_text())
    assert env["channels"][0] == "conda-forge"
    specs = {}
    for entry in env["dependencies"]:
        assert isinstance(entry, str), f"unexpected entry {entry!r} (no pip section is needed)"
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", entry.strip())
        assert match, entry
        name, spec = match.groups()
        name = canonicalize_name(CONDA_TO_PYPI.get(name, name))
        assert name not in specs, f"{name} is listed twice"
        specs[name] = SpecifierSet(spec.replace(" ", ""))
    return specs


def mismatches(path: Path) -> list[str]:
    """How the environment at ``path`` differs from pyproject.toml's dependencies."""
    specs = conda_specs(path)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {"python": SpecifierSet(project["requires-python"])}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        wanted[canonicalize_name(requirement.name)] = requirement.specifier
    problems = []
    for name, specifier in wanted.items():
        if name not in specs:
            problems.append(f"{name}: pyproject.toml pins {specifier}, the environment lacks it")
        elif specs[name] != specifier:
            problems.append(
                f"{name}: pyproject.toml pins {specifier}, the environment {specs[name]}"
            )
    for name in set(specs) - set(wanted):
        if name not in NOTEBOOK_RUNTIME:
            problems.append(f"{name}: in the environment, not a dependency of geocryo")
        elif specs[name]:
            problems.append(f"{name}: pinned to {specs[name]}; Binder's own version will do")
    return problems


def test_the_environment_pins_what_pyproject_pins() -> None:
    assert mismatches(BINDER / "environment.yml") == []
    assert NOTEBOOK_RUNTIME <= set(conda_specs())


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("numpy >=2.4,<2.5", "numpy >=2.4,<2.6", "numpy: pyproject.toml pins <2.5,>=2.4"),
        ("intake ==2.0.9", "intake", "intake: pyproject.toml pins ==2.0.9"),
        ("pyyaml >=6", "pyyaml >=6\n  - torch", "torch: in the environment, not a dependency"),
        (
            "  - flax >=0.12.8,<0.13\n",
            "",
            "flax: pyproject.toml pins <0.13,>=0.12.8, the environment lacks",
        ),
    ],
)
def test_a_different_pin_is_caught(tmp_path: Path, old: str, new: str, problem: str) -> None:
    text = (BINDER / "environment.yml").read_text()
    assert old in text
    changed = tmp_path / "environment.yml"
    changed.write_text(text.replace(old, new))
    found = mismatches(changed)
    assert len(found) == 1 and found[0].startswith(problem), found


def test_the_installed_stack_solves_both() -> None:
    # The environment the tests run in was solved from pyproject.toml; its versions must be
    # allowed by the Binder environment too (prereleases count as what they are).
    for name, specifier in conda_specs().items():
        if name in NOTEBOOK_RUNTIME or name == "python":
            continue
        installed = version(name)
        assert specifier.contains(installed, prereleases=True), (
            f"{name} {installed} is installed, but binder/environment.yml asks for {specifier}"
        )


def test_post_build_installs_geocryo_and_writes_the_default_store() -> None:
    script = BINDER / "postBuild"
    assert os.access(script, os.X_OK), "binder/postBuild must be executable"
    subprocess.run(["bash", "-n", str(script)], check=True)  # parses as bash
    commands = [
        shlex.split(line)
        for line in script.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "set "))
    ]
    assert ["python", "-m", "pip", "install", "--no-deps", "-e", "."] in commands
    synth = [c for c in commands if c[0] == "geocryo"]
    assert len(synth) == 1
    args = build_parser().parse_args(synth[0][1:])  # options geocryo synth really has
    assert args.command == "synth"
    # where the synthetic catalog entry looks for the store by default
    assert args.out == "data/synthetic/alaska.zarr"
    entry = yaml.safe_load((ROOT / "catalogs" / "synthetic.yaml").read_text())
    assert "'/../data') ~ '/synthetic/alaska.zarr'" in entry["sources"]["alaska"]["args"]["urlpath"]
    # the default world: the same sizes as `geocryo synth` with no options
    defaults = build_parser().parse_args(["synth"])
    assert (args.ny, args.nx, args.start, args.end) == (
        defaults.ny,
        defaults.nx,
        defaults.start,
        defaults.end,
    )
