"""Supervised windows and patches: sample counts, months, masks, values, order, engines, threads."""

from __future__ import annotations

import threading
import weakref

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import geocryo
from geocryo.batching import Batch, PatchStream, WindowSpec
from geocryo.batching.stream import THREAD_PREFIX
from geocryo.batching.windows import epoch_order, origins

#: 4 months of look-back, target two months after the last, 4 x 4 patches sharing one cell.
SPEC = WindowSpec(lookback=4, lead=2, patch=4, overlap=1, batch_size=8)


@pytest.fixture(scope="module")
def cube(small_cube) -> xr.Dataset:
    """The 12 x 10 x 36-month synthetic cube, loaded (numpy-backed)."""
    return small_cube[0].compute()


def stream(ds: xr.Dataset, months=None, spec: WindowSpec = SPEC, **kwargs) -> PatchStream:
    kwargs.setdefault("require_target", False)
    return PatchStream(ds, ds.indexes["time"] if months is None else months, spec, **kwargs)


def stacked(batches: list[Batch]) -> Batch:
    """All batches of an epoch as one."""
    return Batch(
        inputs={g: np.concatenate([b.inputs[g] for b in batches]) for g in batches[0].inputs},
        targets=np.concatenate([b.targets for b in batches]),
        mask=np.concatenate([b.mask for b in batches]),
        time=np.concatenate([b.time for b in batches]),
        y0=np.concatenate([b.y0 for b in batches]),
        x0=np.concatenate([b.x0 for b in batches]),
    )


def by_sample(batch: Batch) -> Batch:
    """A batch with its samples sorted by (time, y0, x0), to compare two orders."""
    order = np.lexsort((batch.x0, batch.y0, batch.time))
    return Batch(
        {g: v[order] for g, v in batch.inputs.items()},
        batch.targets[order],
        batch.mask[order],
        batch.time[order],
        batch.y0[order],
        batch.x0[order],
    )


def assert_same(a: Batch, b: Batch) -> None:
    assert a.inputs.keys() == b.inputs.keys()
    for group in a.inputs:
        np.testing.assert_array_equal(a.inputs[group], b.inputs[group], err_msg=group)
    for field in ("targets", "mask", "time", "y0", "x0"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def expected_channel(ds: xr.Dataset, name: str, months: slice, y0: int, x0: int, p: int):
    """One channel of one sample straight from the cube: (months, p, p) or (p, p) if static."""
    where = {"y": slice(y0, y0 + p), "x": slice(x0, x0 + p)}
    base = name.removesuffix("_missing")
    if base not in ds.data_vars:  # a channel of an extra dim: <variable>_<label>
        base, label = name.rsplit("_", 1)
        extra = next(d for d in ds[base].dims if d not in ("time", "y", "x"))
        where[extra] = ds[extra].values.tolist().index(int(label))
    var = ds[base]
    if "time" in var.dims:
        where["time"] = months
    values = var.isel(where)
    if name.endswith("_missing"):
        extra = [d for d in values.dims if d not in ("time", "y", "x")]
        return values.isnull().any(extra).transpose(..., "y", "x").values.astype(np.float32)
    return values.fillna(0).transpose(..., "y", "x").values.astype(np.float32)


# -- the spec and the sample index ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("lookback", 0, "WindowSpec.lookback must be >= 1"),
        ("lead", 0, "WindowSpec.lead must be >= 1"),
        ("patch", -2, "WindowSpec.patch must be >= 1"),
        ("overlap", 4, r"WindowSpec.overlap must be in \[0, patch\)"),
        ("batch_size", 0, "WindowSpec.batch_size must be >= 1"),
        ("patch", 2.5, "WindowSpec.patch must be an int"),
    ],
)
def test_window_spec_names_the_bad_field(field, value, message):
    kwargs = {"patch": 4, field: value}
    with pytest.raises((ValueError, TypeError), match=message):
        WindowSpec(**kwargs)


def test_origins_cover_every_cell_without_padding():
    assert origins(12, 4, 3).tolist() == [
        0,
        3,
        6,
        8,
    ]  # 6 + 4 < 12: a last patch flush with the edge
    assert origins(10, 4, 3).tolist() == [0, 3, 6]  # 6 + 4 = 10: already flush
    assert origins(16, 16, 16).tolist() == [0]
    with pytest.raises(ValueError, match="patch=17 is larger than the cube's 'y' size 16"):
        origins(16, 17, 17)


def test_sample_counts(cube):
    # 12 x 10 cells, patch 4, stride 3: 4 x 3 origins; 36 months, L 4, lead 2: 31 last months.
    s = stream(cube)
    samples = s.samples()
    assert len(samples) == 4 * 3 * 31 == 372
    assert len(s) == 47  # ceil(372 / 8)
    assert len(stream(cube, drop_last=True)) == 46
    assert sorted(samples.y0.unique()) == [0, 3, 6, 8] and sorted(samples.x0.unique()) == [0, 3, 6]
    assert (samples.time - samples.last_input == pd.Timedelta(0)).sum() == 0
    lags = (samples.time.dt.year - samples.last_input.dt.year) * 12 + (
        samples.time.dt.month - samples.last_input.dt.month
    )
    assert (lags == 2).all()
    assert samples.last_input.min() == cube.indexes["time"][3]
    assert samples.time.max() == cube.indexes["time"][-1]
    # Patch 5, no overlap: y origins 0, 5, 7 and x origins 0, 5; L 12 + lead 3 leaves 22 months.
    other = stream(cube, spec=WindowSpec(lookback=12, lead=3, patch=5))
    assert len(other.samples()) == 3 * 2 * 22 == 132


def test_a_gap_in_the_months_splits_the_runs(cube):
    time = cube.indexes["time"]
    months = time[:10].append(time[14:30])  # runs of 10 and 16 months
    samples = stream(cube, months).samples()
    assert len(samples) == 12 * ((10 - 6 + 1) + (16 - 6 + 1)) == 192
    assert not samples.time.isin(time[10:14]).any()
    assert not samples.time.isin(time[14:19]).any()  # the second run's first 5 months are look-back


def test_errors_say_what_is_wrong(cube):
    time = cube.indexes["time"]
    with pytest.raises(ValueError, match="not on the cube's time axis"):
        stream(cube, pd.date_range("2030-01", periods=12, freq="MS"))
    with pytest.raises(ValueError, match="lookback \\+ lead = 6"):
        stream(cube, time[:5])
    with pytest.raises(ValueError, match="mode must be one of"):
        stream(cube, mode="persistence")
    with pytest.raises(ValueError, match="engine must be one of"):
        stream(cube, engine="torch")
    with pytest.raises(ValueError, match="targets: 'thaw' is not a variable"):
        stream(cube, targets=["thaw"])
    with pytest.raises(ValueError, match="patch=16 is larger"):
        stream(cube, spec=WindowSpec(patch=16))
    with pytest.raises(ValueError, match="max_slab_bytes"):
        stream(cube, max_slab_bytes=0)


# -- months, masks and values -------------------------------------------------------------------


def test_no_month_outside_the_part_reaches_a_batch(cube):
    time = cube.indexes["time"]
    train, test = time[:22], time[26:]
    # Poison the test period (and the gap): any value of it in a batch would show as 1e6.
    poisoned = cube.copy(deep=True)
    for name, var in poisoned.data_vars.items():
        if "time" in var.dims:
            poisoned[name] = var.where(var.time < time[22], 1e6)
    batches = list(stream(poisoned, train, shuffle=True).epoch(0))
    assert sum(len(b.time) for b in batches) == 12 * (22 - 6 + 1)
    for batch in batches:
        for values in batch.inputs.values():
            assert not np.isin(values, [1e6]).any()
        assert not np.isin(batch.targets, [1e6]).any()
        targets = pd.DatetimeIndex(batch.time)
        firsts = targets - pd.DateOffset(months=SPEC.lead + SPEC.lookback - 1)
        assert targets.isin(train).all() and firsts.isin(train).all()
        assert not targets.isin(test).any()
    # And the test part reads only its own months: its first target is L + lead - 1 months in.
    samples = stream(cube, test).samples()
    assert samples.time.min() == time[26 + 5] and samples.last_input.min() == time[26 + 3]


def test_time_split_parts_stay_apart(cube):
    from geocryo.preprocess import TimeSplit

    parts = TimeSplit(train=0.5, val=0.25, test=0.25).periods(cube, lookback=4, horizon=2)
    seen = {}
    for name, months in parts.items():
        s = stream(cube, months, shuffle=True, seed=3)
        targets = pd.DatetimeIndex(np.concatenate([b.time for b in s]))
        firsts = targets - pd.DateOffset(months=SPEC.lead + SPEC.lookback - 1)
        assert targets.isin(months).all() and firsts.isin(months).all(), name
        seen[name] = set(firsts) | set(targets)
    assert not seen["train"] & set(parts["test"]) and not seen["train"] & set(parts["val"])
    assert not seen["test"] & set(parts["train"])


def test_masks_and_targets_match_the_observations_exactly(cube):
    s = stream(cube, shuffle=True, seed=4)
    batch = stacked(list(s))
    time = cube.indexes["time"]
    observed = 0
    for i in range(len(batch.time)):
        t = time.get_loc(pd.Timestamp(batch.time[i]))
        cells = {"y": slice(batch.y0[i], batch.y0[i] + 4), "x": slice(batch.x0[i], batch.x0[i] + 4)}
        for k, name in enumerate(s.targets):
            truth = cube[name].isel(time=t, **cells).values
            np.testing.assert_array_equal(batch.mask[i, ..., k], np.isfinite(truth))
            np.testing.assert_array_equal(batch.targets[i, ..., k], np.nan_to_num(truth, nan=0.0))
            observed += int(np.isfinite(truth).sum())
    assert observed > 0
    assert set(np.unique(batch.mask)) == {0.0, 1.0}


def test_inputs_are_values_or_zero_with_an_indicator(cube):
    # Patches with a site in them, so that the target history has values and gaps.
    s = stream(cube, shuffle=True, require_target=True)
    batch = next(iter(s.epoch(3)))
    time = cube.indexes["time"]
    for i in range(len(batch.time)):
        t = time.get_loc(pd.Timestamp(batch.time[i])) - SPEC.lead
        months = slice(t - SPEC.lookback + 1, t + 1)
        for group, names in s.channels.items():
            for c, name in enumerate(names):
                want = expected_channel(cube, name, months, batch.y0[i], batch.x0[i], 4)
                got = batch.inputs[group][i, ..., c]
                np.testing.assert_array_equal(got, np.broadcast_to(want, got.shape), err_msg=name)
    # The cube has gaps there, so both sides of the rule were exercised.
    history = batch.inputs["history"]
    assert history[..., 1].max() == 1.0 and history[..., 1].min() == 0.0
    lst = s.channels["remote_sensing"].index("lst_missing")
    assert batch.inputs["remote_sensing"][..., lst].max() == 1.0


def test_channels_by_mode(cube):
    multimodal = stream(cube)
    groups = multimodal.channels
    assert list(groups) == ["history", "remote_sensing", "process_model", "forcing", "static"]
    assert groups["history"] == [
        "alt",
        "alt_missing",
        "ch4_flux",
        "ch4_flux_missing",
        "co2_flux",
        "co2_flux_missing",
    ]
    assert groups["forcing"] == [
        "air_temperature",
        "precipitation",
        "shortwave_radiation",
        "snow_depth",
    ]
    assert groups["static"] == ["elevation", "soil_organic_carbon", "wetland_fraction"]
    rs = groups["remote_sensing"]
    assert rs[:8] == [
        *("lst", "lst_missing", "ndvi", "ndvi_missing"),
        *("sar_alt", "sar_alt_missing", "soil_moisture", "soil_moisture_missing"),
    ]
    # Channels follow the names, not the order the dataset lists its variables in (a Zarr
    # store gives them back in any order).
    shuffled = cube[list(cube.data_vars)[::-1]]
    assert stream(shuffled).channels == groups
    assert rs[8] == "hyperspectral_reflectance_0" and len(rs) == 8 + 64 + 1
    batch = next(iter(multimodal))
    for group, names in groups.items():
        assert batch.inputs[group].shape == (8, 4, 4, 4, len(names))
        assert batch.inputs[group].dtype == np.float32
    assert batch.targets.shape == batch.mask.shape == (8, 4, 4, 3)

    teacher = stream(cube, mode="teacher_forcing")
    assert list(teacher.channels) == ["history"]
    only = next(iter(teacher))
    assert list(only.inputs) == ["history"]
    np.testing.assert_array_equal(only.inputs["history"], batch.inputs["history"])
    assert list(stream(cube, targets=["alt"], mode="teacher_forcing").channels["history"]) == [
        "alt",
        "alt_missing",
    ]


def test_static_features_repeat_over_the_lookback(cube):
    s = stream(cube, shuffle=False)
    batch = next(iter(s))
    static = batch.inputs["static"]
    np.testing.assert_array_equal(static, np.broadcast_to(static[:, :1], static.shape))
    elevation = cube.elevation.values
    for i in range(len(batch.y0)):
        y, x = batch.y0[i], batch.x0[i]
        np.testing.assert_array_equal(static[i, 2, ..., 0], elevation[y : y + 4, x : x + 4])
    band = s.channels["remote_sensing"].index("hyperspectral_reflectance_17")
    spectra = cube.hyperspectral_reflectance.sel(band=17).values
    got = batch.inputs["remote_sensing"][0, :, ..., band]
    np.testing.assert_array_equal(got, np.broadcast_to(spectra[:4, :4], got.shape))


def test_extra_dims_become_channels_in_any_dim_order(cube):
    # A prepared cube: profiles on (time, depth, y, x), PCA scores on an unlabelled dim, x before y.
    rng = np.random.default_rng(0)
    ds = cube[["alt", "lst"]].copy()
    profile = rng.normal(size=(36, 2, 12, 10))
    profile[rng.random(profile.shape) < 0.3] = np.nan
    ds["soil_temperature"] = (("time", "depth", "y", "x"), profile, {"modality": "in_situ"})
    ds = ds.assign_coords(depth=[0.1, 0.5])
    scores = rng.normal(size=(3, 10, 12)).astype(np.float32)
    ds["reflectance_pc"] = (("component", "x", "y"), scores, {"modality": "remote_sensing"})
    s = stream(ds, targets=["alt"], shuffle=False)
    assert s.channels["in_situ"] == [
        "soil_temperature_0.1",
        "soil_temperature_0.5",
        "soil_temperature_missing",
    ]
    assert s.channels["remote_sensing"][2:] == [
        *("reflectance_pc_0", "reflectance_pc_1", "reflectance_pc_2", "reflectance_pc_missing"),
    ]
    batch = list(s)[5]
    i, y, x = 3, batch.y0[3], batch.x0[3]
    t = ds.indexes["time"].get_loc(pd.Timestamp(batch.time[i])) - SPEC.lead
    window = profile[t - 3 : t + 1, :, y : y + 4, x : x + 4].transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(
        batch.inputs["in_situ"][i, ..., :2], np.nan_to_num(window).astype(np.float32)
    )
    np.testing.assert_array_equal(batch.inputs["in_situ"][i, ..., 2], np.isnan(window).any(-1))
    got = batch.inputs["remote_sensing"][i, ..., 2:5]
    want = scores[:, x : x + 4, y : y + 4].transpose(2, 1, 0)
    np.testing.assert_array_equal(got, np.broadcast_to(want, got.shape))
    assert not batch.inputs["remote_sensing"][i, ..., 5].any()


def test_require_target_keeps_exactly_the_patches_with_an_observation(cube):
    full = stream(cube).samples()
    kept = stream(cube, require_target=True).samples()
    seen = cube[["alt", "ch4_flux", "co2_flux"]].to_array().notnull().any("variable").values
    time = cube.indexes["time"]
    want = [
        seen[time.get_loc(row.time), row.y0 : row.y0 + 4, row.x0 : row.x0 + 4].any()
        for row in full.itertuples()
    ]
    assert 0 < len(kept) == sum(want) < len(full)
    pd.testing.assert_frame_equal(
        kept.drop(columns="slab").reset_index(drop=True),
        full[want].drop(columns="slab").reset_index(drop=True),
    )
    for batch in stream(cube, require_target=True):
        assert (batch.mask.sum(axis=(1, 2, 3)) > 0).all()


# -- order, backends, engines ---------------------------------------------------------------------


def test_same_seed_same_batches_other_seed_other_order(cube):
    first = stacked(list(stream(cube, seed=7).epoch(0)))
    again = stacked(list(stream(cube, seed=7).epoch(0)))
    assert_same(first, again)
    other = stacked(list(stream(cube, seed=8).epoch(0)))
    assert not np.array_equal(other.time, first.time) or not np.array_equal(other.y0, first.y0)
    assert_same(by_sample(other), by_sample(first))  # the same samples, in another order
    later = stacked(list(stream(cube, seed=7).epoch(1)))
    assert not np.array_equal(later.y0, first.y0)
    assert_same(later, stacked(list(stream(cube, seed=7).epoch(1))))
    assert_same(first, stacked(list(stream(cube, seed=7))))  # iterating is epoch 0


def test_numpy_and_dask_backed_cubes_give_identical_batches(cube, backend):
    reference = list(stream(cube, seed=2, max_slab_bytes=300_000).epoch(5))
    batches = list(stream(backend(cube), seed=2, max_slab_bytes=300_000).epoch(5))
    assert len(batches) == len(reference) > 0
    for a, b in zip(batches, reference, strict=True):
        assert_same(a, b)


def test_slabs_change_the_order_never_the_samples(cube):
    one = stacked(list(stream(cube, shuffle=False)))
    chunked = cube.chunk({"y": 5, "x": 4, "time": 7})
    s = stream(chunked, shuffle=True, max_slab_bytes=100_000)
    assert len(s._slabs) > 4  # several blocks and time pieces, each with a halo
    assert_same(by_sample(stacked(list(s))), by_sample(one))


def test_slab_and_xbatcher_engines_agree(cube, tmp_path):
    # A store opened lazily, as the reference engine is meant to run; a few months keep it fast.
    geocryo.write_zarr(cube, tmp_path / "cube.zarr", progress=False)
    lazy = geocryo.open_zarr(tmp_path / "cube.zarr")
    months = lazy.indexes["time"][20:30]
    kwargs = {"seed": 1, "require_target": True, "max_slab_bytes": 200_000}
    slab = list(stream(lazy, months, **kwargs))
    xb = list(stream(lazy, months, engine="xbatcher", **kwargs))
    assert len(slab) == len(xb) > 1
    for a, b in zip(slab, xb, strict=True):
        assert_same(a, b)
    # The flush last row of patches (y0 = 8) comes from its own generator; check it is there.
    assert 8 in stacked(slab).y0


def test_len_matches_the_batches_yielded(cube):
    for drop_last in (False, True):
        for batch_size in (5, 8, 372):
            spec = WindowSpec(lookback=4, lead=2, patch=4, overlap=1, batch_size=batch_size)
            s = stream(cube, spec=spec, drop_last=drop_last, max_slab_bytes=300_000)
            sizes = [len(b.time) for b in s]
            assert len(sizes) == len(s)
            assert all(n == batch_size for n in sizes[:-1])
            assert sum(sizes) == (372 - 372 % batch_size if drop_last else 372)


def test_epoch_order_mixes_two_slabs_in_whole_batches():
    slabs = [np.arange(0, 40), np.arange(40, 100), np.arange(100, 130)]
    order = epoch_order(slabs, shuffle=True, seed=0, epoch=0, batch_size=8)
    assert sorted(order.tolist()) == list(range(130))
    slab_of = np.digitize(order, [40, 100])
    for start in range(0, 130, 8):
        assert len(np.unique(slab_of[start : start + 8])) <= 2
    plain = epoch_order(slabs, shuffle=False, seed=0, epoch=0, batch_size=8)
    assert plain.tolist() == list(range(130))


# -- threads and memory ---------------------------------------------------------------------------


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


def test_breaking_early_leaves_no_running_thread(cube):
    s = stream(cube, max_slab_bytes=150_000, prefetch=2)
    assert len(s._slabs) > 3
    for _ in s:
        assert _readers()
        break
    assert not _readers()
    iterator = s.epoch(1)
    next(iterator)
    iterator.close()
    assert not _readers()


def test_memory_holds_at_most_prefetch_plus_two_slabs(cube, monkeypatch):
    class Held(dict):
        pass

    s = stream(cube, max_slab_bytes=150_000, prefetch=1)
    n_slabs = len(s._slabs)
    assert n_slabs > 4
    alive, peak, read = set(), [0], [0]
    original = s._read

    def tracked(k):
        held = Held(original(k))
        alive.add(k)
        weakref.finalize(held, alive.discard, k)
        read[0] += 1
        peak[0] = max(peak[0], len(alive))
        return held

    monkeypatch.setattr(s, "_read", tracked)
    for _ in s:
        peak[0] = max(peak[0], len(alive))
    assert read[0] == n_slabs  # each slab read once per epoch
    assert 2 <= peak[0] <= 1 + 2


def test_history_dropout_hides_whole_cells_like_a_cell_without_a_site(cube):
    from geocryo.batching.augment import HistoryDropout

    base = stream(cube, mode="multimodal", seed=1)
    dropped = HistoryDropout(base, 0.5, seed=4)
    assert len(dropped) == len(base) and dropped.channels == base.channels
    values, missing = base.history_channels
    hidden_any = kept_any = False
    for plain, hid in zip(base.epoch(2), dropped.epoch(2), strict=True):
        # Targets, masks and every other group are untouched.
        np.testing.assert_array_equal(hid.targets, plain.targets)
        np.testing.assert_array_equal(hid.mask, plain.mask)
        for group in plain.inputs:
            if group != "history":
                np.testing.assert_array_equal(hid.inputs[group], plain.inputs[group])
        a, b = plain.inputs["history"], hid.inputs["history"]
        changed = (a != b).any(axis=(1, 4))  # (B, p, p): cells whose history was hidden
        gone = (b[..., values] == 0).all(axis=(1, 4)) & (b[..., missing] == 1).all(axis=(1, 4))
        assert (gone | ~changed).all()  # a changed cell lost all of its history, all months
        same = ~changed
        cells_a, cells_b = np.moveaxis(a, 1, 3), np.moveaxis(b, 1, 3)  # (B, p, p, L, C)
        np.testing.assert_array_equal(cells_b[same], cells_a[same])
        hidden_any |= bool((changed & ((a[..., missing] == 0).any(axis=(1, 4)))).any())
        kept_any |= bool((same & (a[..., missing] == 0).any(axis=(1, 4))).any())
    assert hidden_any and kept_any
    # The same (seed, epoch) hides the same cells: a resumed fit sees what it saw before.
    for a, b in zip(dropped.epoch(3), dropped.epoch(3), strict=True):
        np.testing.assert_array_equal(a.inputs["history"], b.inputs["history"])


def test_history_dropout_refuses_bad_rates(cube):
    from geocryo.batching.augment import HistoryDropout

    for rate in (-0.1, 1.5, float("nan"), True):
        with pytest.raises(ValueError, match="rate must be"):
            HistoryDropout(stream(cube), rate)


def test_a_target_climatology_joins_the_history_and_leaves_with_it(cube):
    from geocryo.batching.augment import HistoryDropout
    from geocryo.preprocess import Outlook

    names = ["alt", "ch4_flux", "co2_flux"]
    train = cube.indexes["time"][:24]
    with_clim = Outlook.fit(cube, train, (), targets=names).apply(cube, lead=1)
    base = PatchStream(with_clim, cube.indexes["time"], WindowSpec(4, 1, 8), "multimodal", names)
    values, _ = base.history_channels
    anchors = base.anchor_channels
    channels = base.channels["history"]
    assert [channels[v] for v in values] == names  # the targets' positions are unchanged
    assert [channels[a] for a in anchors] == [f"{n}_outlook" for n in names]
    assert all(
        channels[a + 1] == f"{n}_outlook_missing" for a, n in zip(anchors, names, strict=True)
    )
    others = [c for g, cs in base.channels.items() if g != "history" for c in cs]
    assert not any("_outlook" in c for c in others)
    dropped = HistoryDropout(base, 1.0, seed=0)
    for batch in dropped.epoch(0):
        history = batch.inputs["history"]
        assert (history[..., anchors] == 0).all() and (
            history[..., [a + 1 for a in anchors]] == 1
        ).all()
        break


def test_masked_cells_leave_the_loss_and_nothing_else(cube):
    from geocryo.batching.augment import MaskCells

    base = stream(cube, mode="multimodal", seed=1)
    cells = np.zeros((cube.sizes["y"], cube.sizes["x"]), bool)
    cells[::2, 1::3] = True
    masked = MaskCells(base, cells)
    assert len(masked) == len(base) and masked.channels == base.channels
    for plain, out in zip(base.epoch(0), masked.epoch(0), strict=True):
        p = plain.mask.shape[1]
        for b in range(len(plain.mask)):
            inside = cells[plain.y0[b] : plain.y0[b] + p, plain.x0[b] : plain.x0[b] + p]
            assert (out.mask[b][inside] == 0).all()
            np.testing.assert_array_equal(out.mask[b][~inside], plain.mask[b][~inside])
        np.testing.assert_array_equal(out.targets, plain.targets)
        for group in plain.inputs:
            np.testing.assert_array_equal(out.inputs[group], plain.inputs[group])
