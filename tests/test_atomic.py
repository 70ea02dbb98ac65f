"""geocryo.io.atomic: the write protocol, its refusals, recovery of every leftover state, and
outputs that survive ``kill -9`` at any step (a real child process killed between two steps)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from geocryo.io import atomic
from geocryo.io.atomic import AtomicWrite, atomic_write, commit_all, recover

needs_sigkill = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="no SIGKILL here")


# -- outputs: a model-like directory or a file, told apart by their generation ----------------


def write_output(target: Path, generation: str, *, directory: bool) -> None:
    """A model-like output at ``target`` (a new path or a staging path): a directory with a
    large-ish parameter file and a settings file, or one file."""
    payload = generation.encode() * 50_000
    if directory:
        (target / "params.bin").write_bytes(payload)
        (target / "model.json").write_text(json.dumps({"generation": generation}))
    else:
        target.write_bytes(payload)


GENERATIONS = ("old", "new", "newer")


def generation(path: Path, *, directory: bool) -> str | None:
    """``"old"``, ``"new"``... of the complete output at ``path``, None if there is none; any
    mix of two generations, or a partial output, fails the test."""
    if not (path.exists() or path.is_symlink()):
        return None
    if directory:
        assert sorted(p.name for p in path.iterdir()) == ["model.json", "params.bin"]
        name = json.loads((path / "model.json").read_text())["generation"]
        data = (path / "params.bin").read_bytes()
    else:
        data = path.read_bytes()
        name = next((n for n in GENERATIONS if data == n.encode() * 50_000), "partial")
    assert data == name.encode() * 50_000, "a partial or mixed output"
    return name


def side_names(path: Path) -> list[str]:
    """The protocol's side names left beside ``path``."""
    return sorted(p.name for p in path.parent.glob(f".{path.name}.geocryo-*"))


def make(tmp_path: Path, gen: str | None, *, directory: bool) -> Path:
    path = tmp_path / ("model" if directory else "state.bin")
    if gen is not None:
        if directory:
            path.mkdir(parents=True)
        write_output(path, gen, directory=directory)
    return path


kinds = pytest.mark.parametrize("directory", [True, False], ids=["directory", "file"])


# -- the protocol ------------------------------------------------------------------------------


@kinds
def test_the_protocol_step_by_step(tmp_path: Path, directory: bool) -> None:
    path = make(tmp_path, "old", directory=directory)
    write = AtomicWrite(path, overwrite=True, directory=directory)
    assert write.staging.name.startswith(f".{path.name}.geocryo-writing-")
    assert write.staging.is_dir() == directory and write.state == "writing"
    write_output(write.staging, "new", directory=directory)
    assert generation(path, directory=directory) == "old"

    write.seal()
    assert write.state == "ready" and not write.staging.exists()
    assert [n.split("-")[1] for n in side_names(path)] == ["ready"]
    assert generation(path, directory=directory) == "old"

    write.set_aside()
    # an old directory is renamed aside; an old file stays in place, hard-linked aside
    assert generation(path, directory=directory) == (None if directory else "old")
    assert sorted(n.split("-")[1] for n in side_names(path)) == ["old", "ready"]

    write.move_in()
    assert generation(path, directory=directory) == "new"
    assert [n.split("-")[1] for n in side_names(path)] == ["old"]

    write.cleanup()
    assert write.state == "committed"
    assert generation(path, directory=directory) == "new"
    assert side_names(path) == []


@kinds
def test_atomic_write_creates_a_new_output(tmp_path: Path, directory: bool) -> None:
    path = make(tmp_path, None, directory=directory)
    with atomic_write(path, directory=directory) as staging:
        assert staging.parent == path.parent and staging != path
        write_output(staging, "new", directory=directory)
        assert not path.exists()
    assert generation(path, directory=directory) == "new"
    assert side_names(path) == []


@kinds
def test_an_existing_output_needs_overwrite(tmp_path: Path, directory: bool) -> None:
    path = make(tmp_path, "old", directory=directory)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        with atomic_write(path, directory=directory) as staging:
            write_output(staging, "new", directory=directory)  # never reached
    assert generation(path, directory=directory) == "old"
    assert side_names(path) == []

    with atomic_write(path, overwrite=True, directory=directory) as staging:
        write_output(staging, "new", directory=directory)
    assert generation(path, directory=directory) == "new"
    assert side_names(path) == []


@kinds
def test_what_is_not_replaceable_is_left_untouched(tmp_path: Path, directory: bool) -> None:
    path = tmp_path / "results"
    path.mkdir()
    (path / "notes.txt").write_text("field notes, 2019")
    seen = []

    def replaceable(candidate: Path) -> bool:
        seen.append(candidate)
        return (candidate / "model.json").is_file()

    with pytest.raises(FileExistsError, match="is not a saved model; refusing to replace it"):
        AtomicWrite(
            path, overwrite=True, replaceable=replaceable, what="a saved model", directory=directory
        )
    assert seen == [path.absolute()]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
    assert [p.name for p in path.iterdir()] == ["notes.txt"]
    assert (path / "notes.txt").read_text() == "field notes, 2019"


@kinds
@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()], ids=repr)
def test_an_error_while_writing_leaves_the_old_output(
    tmp_path: Path, directory: bool, error: BaseException
) -> None:
    path = make(tmp_path, "old", directory=directory)
    with pytest.raises(type(error)):
        with atomic_write(path, overwrite=True, directory=directory) as staging:
            write_output(staging, "new", directory=directory)
            raise error
    assert generation(path, directory=directory) == "old"
    assert side_names(path) == []

    fresh = tmp_path / "fresh"
    with pytest.raises(type(error)):
        with atomic_write(fresh, directory=directory):
            raise error
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_commit_all_puts_every_old_output_back_when_a_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [make(tmp_path / name, "old", directory=True) for name in ("a", "b")]
    writes = [AtomicWrite(path, overwrite=True) for path in paths]
    for write in writes:
        write_output(write.staging, "new", directory=True)

    def failing_move_in(self: AtomicWrite) -> None:
        raise OSError("disk quota exceeded")

    monkeypatch.setattr(writes[1], "move_in", failing_move_in.__get__(writes[1]))
    with pytest.raises(OSError, match="disk quota exceeded"):
        commit_all(writes)
    for path in paths:
        assert generation(path, directory=True) == "old"
        assert side_names(path) == []


# -- recovery of what a killed write left ------------------------------------------------------


def stopped_at(path: Path, step: str, *, directory: bool) -> AtomicWrite:
    """A write of "new" over ``path`` that stopped (was killed) after ``step``."""
    write = AtomicWrite(path, overwrite=True, directory=directory)
    write_output(write.staging, "new", directory=directory)
    for name in ("seal", "set_aside", "move_in"):
        if step == "writing":
            break
        getattr(write, name)()
        if step == name:
            break
    return write


@kinds
@pytest.mark.parametrize(
    ("step", "after"),
    [
        ("writing", "old"),  # a staging that was never sealed: removed
        ("seal", "new"),  # ready, the old in place: rolled forward
        ("set_aside", "new"),  # ready, the old aside: the ready one moved in
        ("move_in", "new"),  # the old beside the new destination: removed
    ],
)
def test_recover_finishes_or_rolls_back(
    tmp_path: Path, directory: bool, step: str, after: str
) -> None:
    path = make(tmp_path, "old", directory=directory)
    stopped_at(path, step, directory=directory)
    assert side_names(path)

    recover(path)
    assert generation(path, directory=directory) == after
    assert side_names(path) == []
    recover(path)  # nothing left to do
    assert generation(path, directory=directory) == after


@kinds
def test_recover_moves_an_old_output_back_when_the_destination_is_missing(
    tmp_path: Path, directory: bool
) -> None:
    path = make(tmp_path, "old", directory=directory)
    write = stopped_at(path, "set_aside", directory=directory)
    shutil.rmtree(write._ready) if directory else write._ready.unlink()  # no ready output
    if not directory:
        path.unlink()  # the old file only aside
    assert generation(path, directory=directory) is None

    recover(path)
    assert generation(path, directory=directory) == "old"
    assert side_names(path) == []


@kinds
def test_the_next_write_recovers_first(tmp_path: Path, directory: bool) -> None:
    path = make(tmp_path, "old", directory=directory)
    stopped_at(path, "set_aside", directory=directory)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        AtomicWrite(path, directory=directory)  # the recovered output exists: refused
    assert generation(path, directory=directory) == "new"
    with atomic_write(path, overwrite=True, directory=directory) as staging:
        write_output(staging, "newer", directory=directory)
    assert generation(path, directory=directory) == "newer"
    assert side_names(path) == []


def test_leftovers_of_other_names_are_not_touched(tmp_path: Path) -> None:
    path = make(tmp_path, "old", directory=True)
    other = make(tmp_path / "sub", "old", directory=True)
    stopped_at(other, "writing", directory=True)
    neighbour = tmp_path / ".model-2.geocryo-writing-abcd1234"  # another destination's
    neighbour.mkdir()
    recover(path)
    assert neighbour.exists() and side_names(other)


# -- kill -9 between any two steps -------------------------------------------------------------

# The child loads geocryo.io.atomic alone (no geocryo import: it starts in milliseconds), makes
# one step of the protocol kill the process, and writes "new" over "old".
CHILD = """
import importlib.util, json, os, signal, sys
from pathlib import Path

spec = importlib.util.spec_from_file_location("atomic_alone", sys.argv[1])
atomic = importlib.util.module_from_spec(spec)
spec.loader.exec_module(atomic)
path, step, directory = Path(sys.argv[2]), sys.argv[3], sys.argv[4] == "directory"


def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


if step != "writing":
    setattr(atomic.AtomicWrite, step, die)  # killed when this step would run
payload = b"new" * 50_000
with atomic.atomic_write(path, overwrite=True, directory=directory) as staging:
    if directory:
        (staging / "params.bin").write_bytes(payload)
        if step == "writing":
            die()  # half of the model written
        (staging / "model.json").write_text(json.dumps({"generation": "new"}))
    else:
        with open(staging, "wb") as f:
            f.write(payload[:1000])
            f.flush()
            if step == "writing":
                die()
            f.write(payload[1000:])
raise SystemExit("not killed")
"""


@needs_sigkill
@kinds
@pytest.mark.parametrize(
    ("killed_in", "before", "after"),
    [
        ("writing", "old", "old"),  # inside the staging, before seal
        ("set_aside", "old", "new"),  # after seal
        ("move_in", "aside", "new"),  # after set_aside
        ("cleanup", "new", "new"),  # after move_in, before cleanup
    ],
)
def test_an_output_survives_kill_9_at_any_step(
    tmp_path: Path, directory: bool, killed_in: str, before: str, after: str
) -> None:
    path = make(tmp_path, "old", directory=directory)
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            atomic.__file__,
            str(path),
            killed_in,
            "directory" if directory else "file",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr

    # Right after the kill: the old output or the new one, whole; only a directory between
    # set_aside and move_in is missing (aside, beside the ready new one).
    if before == "aside":
        before = None if directory else "old"
    assert generation(path, directory=directory) == before

    recover(path)  # what the next write (or a start-up) does first
    assert generation(path, directory=directory) == after
    assert side_names(path) == []


# -- the same with a real model: Forecaster.save over an old model --------------------------------

MODEL_CHILD = """
import os, signal, sys
from pathlib import Path

import jax
import geocryo
from geocryo.io.atomic import AtomicWrite

path, step = Path(sys.argv[1]).absolute(), sys.argv[2]
model = geocryo.load(path)
model.params = jax.tree.map(lambda a: a * 2, model.params)  # the new model
original = getattr(AtomicWrite, step)


def die_at_the_model(self, *args, **kwargs):
    if self.path == path:  # not the plan written inside the model's staging
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, *args, **kwargs)


setattr(AtomicWrite, step, die_at_the_model)
model.save(path, overwrite=True)
raise SystemExit("not killed")
"""


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A tiny fitted model saved once, and its parameters."""
    import jax
    from worlds import world

    import geocryo
    from geocryo.forecast import FitConfig
    from geocryo.preprocess import TimeSplit

    cube, _ = world("four_years")
    with pytest.warns(UserWarning):  # features never observed in the training months
        model = geocryo.fit(
            cube,
            lookback=4,
            patch=8,
            ensemble=1,
            epochs=1,
            config=FitConfig(features=4, layers=1, batch_size=8),
            split=TimeSplit(gap=4),
            progress=False,
        )
    path = model.save(tmp_path_factory.mktemp("saved") / "model")
    return path, [np.asarray(leaf) for leaf in jax.tree.leaves(model.params)]


def params_of(path: Path) -> list[np.ndarray]:
    import jax

    import geocryo

    return [np.asarray(leaf) for leaf in jax.tree.leaves(geocryo.load(path).params)]


@pytest.mark.slow
@needs_sigkill
@pytest.mark.parametrize(
    ("killed_in", "before", "after"),
    # The two points where both models are whole on disk at once (every step is killed in the
    # fast tests above; a real model costs a process with JAX per point).
    [
        ("set_aside", "old", "new"),  # the new model complete, not yet swapped in
        # the old model aside, the new one ready beside it: geocryo.load moves it in
        ("move_in", "new", "new"),
    ],
)
def test_a_model_saved_over_an_old_one_survives_kill_9(
    saved_model, tmp_path: Path, killed_in: str, before: str, after: str
) -> None:
    original, old = saved_model
    new = [leaf * 2 for leaf in old]
    path = Path(shutil.copytree(original, tmp_path / "model"))
    child = subprocess.run(
        [sys.executable, "-c", MODEL_CHILD, str(path), killed_in],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]

    def which() -> str:
        params = params_of(path)
        for name, expected in (("old", old), ("new", new)):
            if all(np.array_equal(a, b) for a, b in zip(params, expected, strict=True)):
                return name
        raise AssertionError("the saved model is neither the old nor the new one")

    assert which() == before
    recover(path)
    assert which() == after
    assert side_names(path) == []
