"""The closed-form start of the network's linear skip, and the trainer starting from it."""

import numpy as np
import pytest

from geocryo.batching import Batch
from geocryo.models.network import GeoCryoNet, latest_inputs
from geocryo.train import TrainConfig, Trainer
from geocryo.train.linear import PENALTIES, _one_standard_error, fit_skip

GROUPS = {"history": ["alt", "alt_missing"], "forcing": ["a", "b", "c"], "static": ["s"]}
WEIGHTS = np.array([0.0, 0.0, 1.5, -2.0, 0.5, 3.0])  # history channels carry no weight
BIAS = 0.7


def batches(seed: int, n: int = 6, noise: float = 0.01, history_signal: bool = True):
    """Batches whose target is linear in the last month's channels, plus the history's own."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        inputs = {
            g: rng.standard_normal((4, 3, 8, 8, len(c))).astype(np.float32)
            for g, c in GROUPS.items()
        }
        latest = np.asarray(latest_inputs(inputs, tuple(GROUPS)))
        y = latest @ WEIGHTS + BIAS + noise * rng.standard_normal(latest.shape[:3])
        if history_signal:  # at the sites, the history predicts the target on its own
            inputs["history"][:, -1, ..., 0] = y
        mask = (rng.uniform(size=(4, 8, 8, 1)) < 0.3).astype(np.float32)
        targets = np.where(mask > 0, y[..., None], 0).astype(np.float32)
        cells = rng.integers(0, 40, size=4)
        out.append(
            Batch(
                inputs,
                targets,
                mask,
                np.zeros(4, "datetime64[ns]"),
                8 * (cells // 5),
                8 * (cells % 5),
            )
        )
    return out


def test_fit_skip_recovers_a_linear_map_from_the_other_groups_only():
    skip = fit_skip(tuple(GROUPS), GROUPS, ["alt"], batches(0))
    assert skip["kernel"].shape == (6, 1) and skip["bias"].shape == (1,)
    # The history, though it alone predicts the target exactly here, gets no weight.
    np.testing.assert_array_equal(skip["kernel"][:2, 0], 0)
    np.testing.assert_allclose(skip["kernel"][2:, 0], WEIGHTS[2:], atol=0.05)
    np.testing.assert_allclose(skip["bias"], [BIAS], atol=0.05)


def test_a_target_never_observed_gets_a_zero_map():
    data = [b._replace(mask=np.zeros_like(b.mask)) for b in batches(1, n=2)]
    skip = fit_skip(tuple(GROUPS), GROUPS, ["alt"], data)
    assert not skip["kernel"].any() and not skip["bias"].any()


def test_the_penalty_is_the_strongest_within_a_standard_error_of_the_best():
    errors = np.array([[1.0, 1.2, 0.8], [1.05, 1.25, 0.85], [2.0, 2.1, 1.9]])
    # Mean errors 1.0, 1.05, 2.0; the best's standard error 0.2 / sqrt(3) = 0.115.
    assert _one_standard_error([0.1, 1.0, 10.0], errors) == 1
    # On clean linear data the weakest penalties fit best, and a noisier target gets a stronger
    # one than a clean target.
    clean = fit_skip(tuple(GROUPS), GROUPS, ["alt"], batches(2, noise=0.01))
    noisy = fit_skip(tuple(GROUPS), GROUPS, ["alt"], batches(2, noise=5.0))
    assert np.abs(noisy["kernel"]).sum() < np.abs(clean["kernel"]).sum()
    with pytest.raises(ValueError, match="penalties"):
        fit_skip(tuple(GROUPS), GROUPS, ["alt"], batches(2, n=1), penalties=())
    assert PENALTIES == tuple(sorted(PENALTIES))


def test_the_trainer_starts_every_member_from_the_given_values():
    model = GeoCryoNet(tuple(GROUPS), ("alt",), features=4, layers=1)
    data = batches(3, n=2)
    skip = fit_skip(tuple(GROUPS), GROUPS, ["alt"], data)
    config = TrainConfig(ensemble=2, epochs=1, warmup_steps=1)
    trainer = Trainer(model, config, total_steps=2, initial={"skip": skip})
    state = trainer.init(data[0])
    for name in ("kernel", "bias"):
        value = np.asarray(state.params["skip"][name])
        np.testing.assert_array_equal(value, np.broadcast_to(skip[name], value.shape))
    # The heads start at zero, so every member first predicts with the linear map alone.
    pred = np.asarray(trainer.predict(state, data[0].inputs))
    latest = np.asarray(latest_inputs(data[0].inputs, tuple(GROUPS)))
    np.testing.assert_allclose(pred[0], latest @ skip["kernel"] + skip["bias"], atol=1e-5)
    np.testing.assert_allclose(pred[0], pred[1], atol=1e-6)
    # Without a start the members differ only in their recurrent parts; the skip is 0.
    plain = Trainer(model, config, total_steps=2).init(data[0])
    assert not np.asarray(plain.params["skip"]["kernel"]).any()
    for initial, message in (
        ({"nope": {"kernel": skip["kernel"]}}, "no parameter 'nope'"),
        ({"skip": {"kernel": skip["kernel"][:3]}}, "has shape"),
        ({"skip": {"kernel": {"x": 1}}}, "is a leaf"),
    ):
        with pytest.raises(ValueError, match=message):
            Trainer(model, config, total_steps=2, initial=initial).init(data[0])
