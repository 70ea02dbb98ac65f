"""Training: masked loss, schedule, vmap ensemble, devices, checkpoints, resume, early stopping.

A tiny network (4 channels, one ConvLSTM layer, 8 x 8 patches, 3 months of look-back) on random
batches; the trainer and its compiled steps are module fixtures, so each is compiled once.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import optax
import pytest
from jax.sharding import Mesh

from geocryo.batching import Batch
from geocryo.models.network import GeoCryoNet
from geocryo.train import (
    TrainConfig,
    Trainer,
    TrainState,
    load_checkpoint,
    loss_from_sums,
    make_optimizer,
    make_schedule,
    masked_sums,
    member_step,
    save_checkpoint,
)
from geocryo.train import checkpoint as checkpoint_module
from geocryo.train.steps import bootstrap_weights

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("alt", "ch4_flux", "co2_flux")
CHANNELS = {"history": 6, "static": 2}
LOOKBACK, PATCH, BATCH, BATCHES = 3, 8, 4, 3
CONFIG = TrainConfig(
    learning_rate=1e-2, warmup_steps=2, epochs=4, patience=2, ensemble=2, bootstrap=True, seed=3
)


def make_batch(seed: int, size: int = BATCH, observed: float = 0.3, offset: float = 0.0) -> Batch:
    """Random standardised inputs; targets a smooth function of them, observed at random."""
    rng = np.random.default_rng(seed)
    inputs = {
        group: rng.standard_normal((size, LOOKBACK, PATCH, PATCH, c), dtype=np.float32)
        for group, c in CHANNELS.items()
    }
    signal = inputs["history"][:, -1, ..., :3] + 0.5 * inputs["static"][:, -1, ..., :1]
    mask = (rng.uniform(size=signal.shape) < observed).astype(np.float32)
    targets = np.where(mask > 0, signal + offset, 0.0).astype(np.float32)
    none = np.zeros(size, dtype="datetime64[ns]")
    return Batch(inputs, targets, mask, none, np.zeros(size, int), np.zeros(size, int))


class Stream:
    """Re-iterable batches with a different order each epoch, like a PatchStream."""

    def __init__(self, batches: list[Batch], fail_at: tuple[int, int] | None = None):
        self.batches = batches
        self.fail_at = fail_at  # (epoch, batch): raise there, as a killed run would stop
        self.epochs: list[int] = []

    def epoch(self, i: int):
        self.epochs.append(i)
        order = np.random.default_rng(i).permutation(len(self.batches))
        for b, k in enumerate(order):
            if self.fail_at == (i, b):
                raise KeyboardInterrupt("killed")
            yield self.batches[k]

    def __iter__(self):
        return self.epoch(0)


class Worsening:
    """Validation batches whose targets drift further away at every pass."""

    def __init__(self, batch: Batch):
        self.batch, self.passes = batch, 0

    def __iter__(self):
        self.passes += 1
        b = self.batch
        yield b._replace(targets=np.where(b.mask > 0, b.targets + 10.0 * self.passes, 0.0))


@pytest.fixture(scope="module")
def model() -> GeoCryoNet:
    return GeoCryoNet(tuple(CHANNELS), TARGETS, features=4, layers=1)


@pytest.fixture(scope="module")
def trainer(model) -> Trainer:
    return Trainer(model, CONFIG, total_steps=CONFIG.epochs * BATCHES)


@pytest.fixture(scope="module")
def data() -> tuple[list[Batch], list[Batch]]:
    return [make_batch(k) for k in range(BATCHES)], [make_batch(100), make_batch(101)]


@pytest.fixture(scope="module")
def full_run(trainer, data, tmp_path_factory):
    """An uninterrupted fit with checkpoints."""
    directory = tmp_path_factory.mktemp("full")
    stream = Stream(data[0])
    state, history = trainer.fit(stream, data[1], checkpoint_dir=directory, progress=False)
    return state, history, directory, stream


# -- configuration and schedule -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("learning_rate", 0.0),
        ("learning_rate", float("nan")),
        ("weight_decay", -1e-4),
        ("warmup_steps", -1),
        ("clip_norm", 0),
        ("epochs", 0),
        ("patience", 1.5),
        ("ensemble", 0),
        ("bootstrap", "yes"),
        ("seed", -2),
    ],
)
def test_config_errors_name_the_field(field, value):
    with pytest.raises((TypeError, ValueError), match=f"TrainConfig.{field}"):
        TrainConfig(**{field: value})


def test_warmup_then_cosine_decay():
    config = TrainConfig(learning_rate=1e-2, warmup_steps=10)
    schedule = make_schedule(config, total_steps=110)
    values = [float(schedule(step)) for step in (0, 5, 10, 35, 60, 110, 200)]
    # Linear to the peak in 10 steps, then half a cosine over the remaining 100.
    cosine = 1e-2 * (1 + np.cos(np.pi * 25 / 100)) / 2
    np.testing.assert_allclose(values, [0, 5e-3, 1e-2, cosine, 5e-3, 0, 0], atol=1e-9)
    # A run shorter than the warm-up still peaks, half-way.
    short = make_schedule(TrainConfig(learning_rate=1e-2, warmup_steps=100), total_steps=20)
    assert float(short(10)) == pytest.approx(1e-2) and float(short(20)) == 0.0
    with pytest.raises(ValueError, match="total_steps"):
        make_schedule(config, 0)


def test_optimizer_is_adamw_on_clipped_gradients():
    config = TrainConfig(learning_rate=0.1, warmup_steps=0, clip_norm=0.5, weight_decay=0.01)
    optimizer = make_optimizer(config, total_steps=10)
    reference = optax.adamw(make_schedule(config, 10), weight_decay=0.01)
    params = {"w": np.ones(4, np.float32)}
    steps = [np.array([3.0, 4.0, 0.0, 0.0]), np.array([0.0, 0.1, 0.0, 0.0])]  # norms 5, 0.1
    clipped = [steps[0] * 0.5 / 5.0, steps[1]]  # only the first exceeds clip_norm
    state, ref_state = optimizer.init(params), reference.init(params)
    for g, c in zip(steps, clipped, strict=True):
        updates, state = optimizer.update({"w": g.astype(np.float32)}, state, params)
        expected, ref_state = reference.update({"w": c.astype(np.float32)}, ref_state, params)
        np.testing.assert_allclose(updates["w"], expected["w"], rtol=1e-5, atol=1e-7)


# -- the loss -----------------------------------------------------------------------------------


def test_masked_loss_equals_a_hand_computation():
    rng = np.random.default_rng(0)
    pred = rng.standard_normal((3, 2, 2, 3)).astype(np.float32)
    targets = rng.standard_normal((3, 2, 2, 3)).astype(np.float32)
    mask = (rng.uniform(size=targets.shape) < 0.6).astype(np.float32)
    mask[..., 2] = 0.0  # the third target is never observed in this batch
    targets[mask == 0] = np.nan  # whatever stands at unobserved cells must not matter
    weight = np.array([1.0, 2.0, 0.0], np.float32)  # e.g. bootstrap draws; 0 drops a sample
    sse, count = masked_sums(pred, targets, mask, weight)
    loss = float(loss_from_sums(sse, count))

    expected = []
    for k in range(2):
        num = den = 0.0
        for b in range(3):
            for i in range(2):
                for j in range(2):
                    if mask[b, i, j, k]:
                        num += weight[b] * (pred[b, i, j, k] - targets[b, i, j, k]) ** 2
                        den += weight[b]
        expected.append(num / max(den, 1.0))
    assert float(count[2]) == 0.0
    # The absent target neither adds nor dilutes: the mean is over the two observed ones.
    assert loss == pytest.approx(np.mean(expected), rel=1e-5)
    assert float(loss_from_sums(np.zeros(3), np.zeros(3))) == 0.0


def test_a_target_never_observed_gets_no_gradient(trainer, model):
    batch = make_batch(7)
    mask = batch.mask.copy()
    mask[..., 1] = 0.0  # ch4_flux never observed
    targets = batch.targets.copy()
    targets[..., 1] = np.nan
    device = trainer.shard(batch._replace(mask=mask, targets=targets))
    params = trainer.init(batch).member(0).params
    # The heads start at zero beside the linear skip; give them weight, so that gradients
    # reach the encoders.
    for name in TARGETS:
        head = params[f"head_{name}"]
        params[f"head_{name}"] = {**head, "kernel": np.ones_like(head["kernel"])}

    @jax.jit
    def grads(p):
        def loss(p):
            pred = model.apply({"params": p}, device.inputs)
            return loss_from_sums(*masked_sums(pred, device.targets, device.mask, device.weight))

        return jax.grad(loss)(p)

    g = grads(params)
    for leaf in jax.tree.leaves(g["head_ch4_flux"]):
        assert np.all(np.asarray(leaf) == 0.0)
    for name in ("head_alt", "head_co2_flux", "fusion", "history_encoder"):
        leaves = jax.tree.leaves(g[name])
        assert all(np.isfinite(leaf).all() for leaf in leaves)
        assert max(float(np.abs(leaf).max()) for leaf in leaves) > 0
    skip = np.asarray(g["skip"]["kernel"])
    assert np.all(skip[:, 1] == 0) and (np.abs(skip[:, [0, 2]]).max(axis=0) > 0).all()


def test_online_bootstrap_draws_poisson_one_per_sample():
    key = jax.random.key(0)
    draws = np.asarray(jax.jit(bootstrap_weights, static_argnums=1)(key, 20_000))
    assert draws.mean() == pytest.approx(1.0, abs=0.03)
    assert draws.var() == pytest.approx(1.0, abs=0.05)
    assert (draws == 0).mean() == pytest.approx(np.exp(-1), abs=0.02)
    # A sample's draw does not depend on the batch size (padding keeps real samples' weights).
    np.testing.assert_array_equal(bootstrap_weights(key, 6)[:5], bootstrap_weights(key, 5))


# -- steps, ensemble and devices ----------------------------------------------------------------


def test_vmap_ensemble_equals_members_trained_alone(trainer, data):
    batches = data[0]
    state = trainer.init(batches[0])
    key = jax.random.key(11)
    ensemble = state
    for i, batch in enumerate(batches):
        ensemble, metrics = trainer.train_step(ensemble, batch, jax.random.fold_in(key, i))
    assert metrics["loss"].shape == (2,) and metrics["mse"].shape == (2, 3)
    assert np.all(np.asarray(ensemble.step) == len(batches))

    alone = jax.jit(
        lambda p, o, b, k: member_step(
            p, o, b, k, apply_fn=trainer.model.apply, optimizer=trainer.optimizer, bootstrap=True
        )
    )
    for m in range(CONFIG.ensemble):
        params, opt_state = state.member(m).params, state.member(m).opt_state
        for i, batch in enumerate(batches):
            member_key = jax.random.split(jax.random.fold_in(key, i), CONFIG.ensemble)[m]
            params, opt_state, _ = alone(params, opt_state, trainer.shard(batch), member_key)
        # Float tolerance: the heads start at zero, so the encoders' first gradients are tiny,
        # and Adam scales their rounding up to the size of an update.
        for a, b in zip(
            jax.tree.leaves(params), jax.tree.leaves(ensemble.member(m).params), strict=True
        ):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    # The members are different models (own initial keys and bootstrap draws).
    first, second = (ensemble.member(m).params["head_alt"]["kernel"] for m in range(2))
    assert not np.allclose(first, second)


DEVICES_SCRIPT = textwrap.dedent(
    """
    import json
    import jax, numpy as np
    from jax.sharding import Mesh
    from geocryo.batching import Batch
    from geocryo.models.network import GeoCryoNet
    from geocryo.train import TrainConfig, Trainer

    assert len(jax.devices()) == 4, jax.devices()
    rng = np.random.default_rng(0)

    def batch(n):  # 6 samples: not divisible by 4 devices, so padded
        inputs = {"history": rng.standard_normal((n, 3, 8, 8, 6), dtype=np.float32),
                  "static": rng.standard_normal((n, 3, 8, 8, 2), dtype=np.float32)}
        mask = (rng.uniform(size=(n, 8, 8, 3)) < 0.3).astype(np.float32)
        targets = (inputs["history"][:, -1, ..., :3] * mask).astype(np.float32)
        return Batch(inputs, targets, mask, None, None, None)

    batches = [batch(6) for _ in range(3)]
    model = GeoCryoNet(("history", "static"), ("alt", "ch4_flux", "co2_flux"),
                       features=4, layers=1, dropout=0.2)
    config = TrainConfig(learning_rate=1e-2, warmup_steps=1, ensemble=2, seed=5)
    devices = np.asarray(jax.devices())
    meshes = {
        "one": Mesh(devices[:1], ("data",)),
        "four": None,  # the default: every device on the "data" axis
        "two_by_two": Mesh(devices.reshape(2, 2), ("ensemble", "data")),
    }
    out = {}
    for name, mesh in meshes.items():
        trainer = Trainer(model, config, total_steps=3, mesh=mesh)
        state = trainer.init(batches[0])
        for i, b in enumerate(batches):
            state, metrics = trainer.train_step(state, b, jax.random.key(i))
        sums = trainer.eval_step(state, batches[0])
        out[name] = {
            "params": [np.asarray(x).tolist() for x in jax.tree.leaves(state.params)],
            "loss": np.asarray(metrics["loss"]).tolist(),
            "sse": np.asarray(sums["sse"]).tolist(),
            "devices": len(state.params["head_alt"]["kernel"].sharding.device_set),
        }
    print(json.dumps(out))
    """
)


def test_four_devices_give_the_parameters_of_one():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run(
        [sys.executable, "-c", DEVICES_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["one"]["devices"] == 1 and out["four"]["devices"] == 4
    for name in ("four", "two_by_two"):
        for a, b in zip(out["one"]["params"], out[name]["params"], strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
        np.testing.assert_allclose(out["one"]["loss"], out[name]["loss"], rtol=1e-5)
        np.testing.assert_allclose(out["one"]["sse"], out[name]["sse"], rtol=1e-5)


def test_batches_are_checked_against_the_model(trainer):
    batch = make_batch(0)
    with pytest.raises(ValueError, match="static"):
        trainer.shard(batch._replace(inputs={"history": batch.inputs["history"]}))
    with pytest.raises(ValueError, match=r"\(B, p, p, 3\)"):
        trainer.shard(batch._replace(targets=batch.targets[..., :2]))
    with pytest.raises(ValueError, match="mesh axes"):
        Trainer(trainer.model, CONFIG, 10, mesh=Mesh(np.asarray(jax.devices()[:1]), ("batch",)))


# -- fit: history, checkpoints, resume, early stopping --------------------------------------------


def test_fit_history_predictions_and_checkpoint(trainer, data, full_run):
    state, history, directory, stream = full_run
    n = history.sizes["epoch"]
    assert stream.epochs == list(range(n))  # epoch i iterated stream.epoch(i)
    assert dict(history["value"].sizes) == {"epoch": n, "metric": 4, "split": 2}
    assert list(history["metric"].values) == ["loss", "mse_alt", "mse_ch4_flux", "mse_co2_flux"]
    assert list(history["split"].values) == ["train", "val"]
    assert dict(history["member_value"].sizes)["member"] == CONFIG.ensemble
    assert np.isfinite(history["value"]).all() and np.isfinite(history["member_value"]).all()
    assert list(history["steps"].values) == [BATCHES * (e + 1) for e in range(n)]
    schedule = make_schedule(CONFIG, CONFIG.epochs * BATCHES)
    expected_lr = [float(schedule(BATCHES * (e + 1) - 1)) for e in range(n)]
    np.testing.assert_allclose(history["learning_rate"], expected_lr, rtol=1e-6)
    # The loss is the mean of the targets' MSEs, the ensemble value the mean of the members'.
    value = history["member_value"]
    np.testing.assert_allclose(
        value.sel(metric="loss"), value.drop_sel(metric="loss").mean("metric"), rtol=1e-6
    )
    np.testing.assert_allclose(history["value"], value.mean("member"))
    # The returned state is the best epoch's, scored on the validation batches again.
    best = int(history.attrs["best_epoch"])
    val_loss = history["value"].sel(split="val", metric="loss")
    assert best == int(np.argmin(val_loss.values)) and np.all(
        np.asarray(state.step) == BATCHES * (best + 1)
    )
    sse = count = 0
    for batch in data[1]:
        sums = trainer.eval_step(state, batch)
        sse, count = sse + np.asarray(sums["sse"]), count + np.asarray(sums["count"])
    member_loss = (sse / count).mean(axis=1)
    assert member_loss.mean() == pytest.approx(float(val_loss[best]), rel=1e-5)
    # Predictions of every member: finite, and the members differ.
    pred = np.asarray(trainer.predict(state, data[1][0].inputs))
    assert pred.shape == (CONFIG.ensemble, BATCH, PATCH, PATCH, 3)
    assert np.isfinite(pred).all() and (pred.std(axis=0) > 0).mean() > 0.99
    # The last checkpoint holds the last epoch, the best state and the history so far.
    last, meta = load_checkpoint(directory / "checkpoint.msgpack", like=state)
    assert int(meta["epoch"]) == n - 1 and int(meta["best_epoch"]) == best
    assert meta["config"] == CONFIG.to_dict()
    assert np.all(last.step == BATCHES * n)


def test_resume_after_a_kill_equals_the_uninterrupted_run(trainer, data, full_run, tmp_path):
    state, history, _, _ = full_run
    killed = Stream(data[0], fail_at=(2, 1))  # dies in the middle of the third epoch
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(killed, data[1], checkpoint_dir=tmp_path, progress=False)
    _, meta = load_checkpoint(tmp_path / "checkpoint.msgpack", like=state)
    assert int(meta["epoch"]) == 1  # two complete epochs were saved
    resumed = Stream(data[0])
    again, again_history = trainer.fit(
        resumed, data[1], checkpoint_dir=tmp_path, resume=True, progress=False
    )
    assert resumed.epochs[0] == 0 and resumed.epochs[1:] == list(range(2, history.sizes["epoch"]))
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)  # bitwise, on one device
    np.testing.assert_array_equal(history["member_value"], again_history["member_value"])
    assert again_history.attrs == history.attrs
    # A finished run resumes to its result at once.
    done, _ = trainer.fit(data[0], data[1], checkpoint_dir=tmp_path, resume=True, progress=False)
    for a, b in zip(jax.tree.leaves(done), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)
    # Another configuration may not resume it.
    other = Trainer(trainer.model, TrainConfig(**{**CONFIG.to_dict(), "learning_rate": 0.1}), 12)
    with pytest.raises(ValueError, match="learning_rate"):
        other.fit(data[0], data[1], checkpoint_dir=tmp_path, resume=True, progress=False)


def test_early_stopping_returns_the_best_state(trainer, data):
    val = Worsening(data[1][0])
    state, history = trainer.fit(Stream(data[0]), val, progress=True)
    # The validation loss is lowest after epoch 0; two more epochs without improvement stop it.
    assert history.sizes["epoch"] == 1 + CONFIG.patience < CONFIG.epochs
    assert history.attrs["best_epoch"] == 0 and history.attrs["stopped_early"] == 1
    assert np.all(np.asarray(state.step) == BATCHES)
    assert np.all(np.diff(history["value"].sel(split="val", metric="loss")) > 0)


def test_fit_without_validation_returns_the_last_state(trainer, data):
    state, history = trainer.fit(data[0], None, progress=False)  # a plain list: same order
    assert history.sizes["epoch"] == CONFIG.epochs and history.attrs["stopped_early"] == 0
    assert np.all(np.asarray(state.step) == CONFIG.epochs * BATCHES)
    assert np.isnan(history["value"].sel(split="val")).all()
    assert np.isfinite(history["value"].sel(split="train")).all()


def test_training_lowers_the_loss(full_run):
    _, history, _, _ = full_run
    train = history["value"].sel(split="train", metric="loss")
    assert float(train[-1]) < float(train[0])


# -- checkpoint files -----------------------------------------------------------------------------


def _state(value: float) -> TrainState:
    params = {"w": np.full((2, 3), value, np.float32), "b": np.zeros(2, np.float32)}
    return TrainState(params=params, opt_state=(np.zeros(2, np.int32),), step=np.zeros(2))


def test_an_interrupted_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run" / "checkpoint.msgpack"
    save_checkpoint(path, _state(1.0), {"epoch": 0, "history": {"a": np.arange(3)}})

    def half_then_fail(f, data):
        f.write(data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "_write_blocks", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _state(2.0), {"epoch": 1})
    state, meta = load_checkpoint(path, like=_state(0.0))
    assert meta["epoch"] == 0 and np.all(state.params["w"] == 1.0)
    np.testing.assert_array_equal(meta["history"]["a"], np.arange(3))
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    monkeypatch.undo()
    save_checkpoint(path, _state(2.0), {"epoch": 1})
    state, meta = load_checkpoint(path, like=_state(0.0))
    assert meta["epoch"] == 1 and np.all(state.params["w"] == 2.0)


_KILLED_SAVE = """
import os, signal, sys
import numpy as np
from geocryo.io.atomic import AtomicWrite
from geocryo.train import TrainState, save_checkpoint
from geocryo.train import checkpoint

path, step = sys.argv[1], sys.argv[2]


def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def half_then_die(f, data):
    f.write(data[: len(data) // 2])
    f.flush()
    die()


if step == "writing":
    checkpoint._write_blocks = half_then_die
else:
    setattr(AtomicWrite, step, die)  # killed when this step of the atomic write would run
params = {"w": np.full((2, 3), 2.0, np.float32), "b": np.zeros(2, np.float32)}
state = TrainState(params=params, opt_state=(np.zeros(2, np.int32),), step=np.zeros(2))
save_checkpoint(path, state, {"epoch": 1})
raise SystemExit("not killed")
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="no SIGKILL here")
@pytest.mark.parametrize(
    ("killed_in", "epoch"),
    [("writing", 0), ("set_aside", 0), ("move_in", 0), ("cleanup", 1)],
)
def test_a_checkpoint_survives_kill_9_at_any_step(tmp_path, killed_in, epoch):
    path = tmp_path / "run" / "checkpoint.msgpack"
    save_checkpoint(path, _state(1.0), {"epoch": 0})
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_SAVE, str(path), killed_in],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    # A file is never missing: right after the kill the old checkpoint or the new one loads.
    state, meta = load_checkpoint(path, like=_state(0.0))
    assert meta["epoch"] == epoch and np.all(state.params["w"] == 1.0 + epoch)
    # The next save clears what the killed one left.
    save_checkpoint(path, _state(3.0), {"epoch": 2})
    state, meta = load_checkpoint(path, like=_state(0.0))
    assert meta["epoch"] == 2 and np.all(state.params["w"] == 3.0)
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_checkpoint_never_replaces_a_directory(tmp_path):
    path = tmp_path / "checkpoint.msgpack"
    path.mkdir()
    (path / "notes.txt").write_text("kept")
    with pytest.raises(FileExistsError, match="not a checkpoint file"):
        save_checkpoint(path, _state(1.0), {"epoch": 0})
    assert (path / "notes.txt").read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_broken_or_mismatched_checkpoints_are_refused(tmp_path):
    path = tmp_path / "checkpoint.msgpack"
    save_checkpoint(path, _state(1.0), {"epoch": 0})
    with pytest.raises(ValueError, match="shape"):
        bigger = _state(0.0)
        load_checkpoint(path, like=bigger.replace(params={**bigger.params, "w": np.zeros((4, 3))}))
    path.write_bytes(path.read_bytes()[:40])  # as a torn copy would be
    with pytest.raises(ValueError, match="unreadable"):
        load_checkpoint(path, like=_state(0.0))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.msgpack", like=_state(0.0))
