"""The ask/tell Bayesian optimiser: an initial Sobol design, then a GP and log EI, in batches.

>>> opt = Optimizer({"x": Real(-5, 10), "y": Real(0, 15)}, seed=0)
>>> for _ in range(30):
...     (params,) = opt.ask()
...     opt.tell(params, branin(**params))
>>> opt.best_params, opt.best_value
>>> opt.save("search.json"); opt = Optimizer.load("search.json")  # continues exactly

``ask(n)`` hands out ``n`` configurations to evaluate in parallel: after the first, each is chosen
with the ones before it (and every pending trial, asked but not yet told) in the GP as fantasy
observations, at the posterior mean ("kriging believer") or at the best value seen ("constant
liar"). A trial that fails (``tell(params, None)``, a NaN or an infinite value) is never asked
again; by default it enters the GP at the worst value seen, which steers the search away from
regions that fail (diverging learning rates). Minimises; negate a score to maximise it.

The optimiser's state is a frozen :class:`State` that :meth:`Optimizer.tell` and
:meth:`Optimizer.ask` replace; the randomness of each ask is drawn from ``(seed, asks so far)``,
so a search saved to JSON and loaded again suggests exactly what the uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import qmc

from .._checks import integer, number
from .acquisition import ACQUISITIONS
from .gp import GP, Prior, fit_gp
from .maximize import maximize
from .space import Dimension, Space

__all__ = ["BATCH_STRATEGIES", "FAILURES", "Optimizer", "State", "Trial", "minimize"]

#: How the points of a batch (and pending trials) enter the GP before the next is chosen.
BATCH_STRATEGIES: tuple[str, ...] = ("kriging_believer", "constant_liar")
#: What a failed trial is to the GP: the worst value seen, or nothing (only never re-asked).
FAILURES: tuple[str, ...] = ("worst", "ignore")
_FORMAT = "geocryo-bayesopt-1"


@dataclass(frozen=True)
class Trial:
    """One told evaluation.

    Attributes
    ----------
    params
        The configuration.
    value
        The objective, or ``None`` when the trial failed.
    error
        Why it failed (a message), if it did.
    """

    params: dict[str, Any]
    value: float | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the trial gave a finite value."""
        return self.value is not None


@dataclass(frozen=True)
class State:
    """Everything an :class:`Optimizer` has learnt; replaced, never changed in place.

    Attributes
    ----------
    trials
        Told evaluations, in the order they were told.
    pending
        Configurations asked for and not yet told.
    asks
        Calls of :meth:`Optimizer.ask` so far (seeds each call's randomness).
    initial
        Points of the initial design handed out so far.
    theta
        The last GP fit's log-hyperparameters (the next fit starts from them), or ``None``.
    """

    trials: tuple[Trial, ...] = ()
    pending: tuple[dict[str, Any], ...] = ()
    asks: int = 0
    initial: int = 0
    theta: tuple[float, ...] | None = None


class Optimizer:
    """Bayesian optimisation by ask and tell, minimising an objective over a :class:`Space`.

    Parameters
    ----------
    space
        A :class:`Space` or a dict ``{name: Real | Integer | Categorical}``.
    n_initial
        Configurations from a scrambled Sobol design before the GP takes over (default
        ``width + 1``, with ``width`` the coordinates of the encoded space, at least 3).
    acquisition
        ``"log_ei"`` (default) or ``"ucb"``.
    kappa
        UCB's multiplier of the posterior standard deviation.
    batch
        ``"kriging_believer"`` (default) or ``"constant_liar"``: the fantasy value of points
        chosen but not yet evaluated.
    failures
        ``"worst"`` (default): a failed trial enters the GP at the worst value seen;
        ``"ignore"``: it stays out of the GP (it is still never asked again).
    prior
        Priors of the GP hyperparameters (:class:`~geocryo.bayesopt.gp.Prior`).
    restarts
        Starts of each GP fit.
    seed
        Root seed of the design and of every ask.
    """

    def __init__(
        self,
        space: Space | Mapping[str, Dimension],
        *,
        n_initial: int | None = None,
        acquisition: str = "log_ei",
        kappa: float = 2.0,
        batch: str = "kriging_believer",
        failures: str = "worst",
        prior: Prior | None = None,
        restarts: int = 3,
        seed: int = 0,
    ) -> None:
        self.space = space if isinstance(space, Space) else Space(space)
        if n_initial is None:
            n_initial = max(3, self.space.width + 1)
        self.n_initial = integer("n_initial", n_initial, low=1)
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"acquisition must be one of {ACQUISITIONS}, got {acquisition!r}")
        if batch not in BATCH_STRATEGIES:
            raise ValueError(f"batch must be one of {BATCH_STRATEGIES}, got {batch!r}")
        if failures not in FAILURES:
            raise ValueError(f"failures must be one of {FAILURES}, got {failures!r}")
        kappa = number("kappa", kappa, low=0)
        if prior is not None and not isinstance(prior, Prior):
            raise TypeError(f"prior must be a geocryo.bayesopt.Prior, got {prior!r}")
        self.acquisition = acquisition
        self.kappa = float(kappa)
        self.batch = batch
        self.failures = failures
        self.prior = prior or Prior()
        self.restarts = integer("restarts", restarts, low=1)
        self.seed = integer("seed", seed, low=0)
        self.state = State()
        self._design: np.ndarray | None = None

    def __repr__(self) -> str:
        return (
            f"Optimizer({len(self.space)} dimensions, {len(self.state.trials)} trials, "
            f"{len(self.state.pending)} pending, best={self.best_value})"
        )

    # -- results ------------------------------------------------------------------------------

    @property
    def trials(self) -> list[Trial]:
        """Told evaluations, in order."""
        return list(self.state.trials)

    @property
    def pending(self) -> list[dict[str, Any]]:
        """Configurations asked for and not told yet."""
        return [dict(p) for p in self.state.pending]

    def _best_trial(self) -> Trial | None:
        ok = [t for t in self.state.trials if t.ok]
        return min(ok, key=lambda t: t.value) if ok else None

    @property
    def best_params(self) -> dict[str, Any] | None:
        """The configuration with the lowest value told so far (``None`` before any)."""
        trial = self._best_trial()
        return None if trial is None else dict(trial.params)

    @property
    def best_value(self) -> float | None:
        """The lowest value told so far (``None`` before any)."""
        trial = self._best_trial()
        return None if trial is None else trial.value

    # -- tell ---------------------------------------------------------------------------------

    def tell(
        self,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        value: float | Sequence[float | None] | None,
        error: str | None = None,
    ) -> None:
        """Record evaluations: one configuration and its value, or lists of both.

        A value of ``None``, NaN or +-inf marks a failed trial (``error`` may say why). A
        configuration that was asked for leaves the pending list.
        """
        if isinstance(params, Mapping):
            params, value = [params], [value]
        else:
            params = list(params)
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise TypeError(
                    "tell with a list of configurations needs a list of values of the same length"
                )
            if len(value) != len(params):
                raise ValueError(f"tell got {len(params)} configurations but {len(value)} values")
        state = self.state
        trials, pending = list(state.trials), list(state.pending)
        for p, v in zip(params, value, strict=True):
            x = self.space.encode(p)  # validates the configuration
            if v is not None:  # NaN and +-inf are failures, like None
                v = number("a trial's value", v, finite=False, what="a number or None")
            v = None if v is None or not math.isfinite(v) else v
            for i, q in enumerate(pending):
                if np.array_equal(self.space.encode(q), x):
                    del pending[i]
                    break
            message = error if v is None else None
            if v is None and message is None:
                message = "no finite value"
            trials.append(Trial(dict(p), v, message))
        self.state = replace(state, trials=tuple(trials), pending=tuple(pending))

    # -- ask ----------------------------------------------------------------------------------

    def ask(self, n: int = 1) -> list[dict[str, Any]]:
        """The next ``n`` configurations to evaluate (they become pending until told).

        The first ``n_initial`` (counting trials told and pending) come from a scrambled Sobol
        design; later ones maximise the acquisition of a GP fitted to the told trials, with each
        pending or already chosen configuration in it as a fantasy observation.
        """
        n = integer("n", n, low=1)
        state = self.state
        rng = np.random.default_rng([self.seed, state.asks])
        told = [self.space.encode(t.params) for t in state.trials]
        pending = [self.space.encode(p) for p in state.pending]
        chosen: list[np.ndarray] = []
        initial = state.initial
        theta = state.theta
        gp = best = None
        has_values = any(t.ok for t in state.trials)
        for i in range(n):
            taken = np.array(told + pending + chosen).reshape(-1, self.space.width)
            point = None
            if len(taken) >= self.n_initial and has_values:
                if gp is None:
                    gp, best, theta = self._model(pending, rng, theta)
                point = maximize(
                    gp,
                    self.space,
                    best,
                    rng,
                    kind=self.acquisition,
                    kappa=self.kappa,
                    exclude=taken,
                )
            if point is None:
                point, initial = self._design_point(initial, taken, rng)
            if gp is not None and i < n - 1:  # the next point of the batch sees this one
                gp = gp.condition(point, self._fantasy(gp, point))
            chosen.append(point)
        asked = [self.space.decode(x) for x in chosen]
        self.state = replace(
            state,
            pending=state.pending + tuple(dict(p) for p in asked),
            asks=state.asks + 1,
            initial=initial,
            theta=None if theta is None else tuple(float(t) for t in theta),
        )
        return asked

    def _model(self, pending: list[np.ndarray], rng: np.random.Generator, theta):
        """The GP of the told trials (and pending fantasies), the incumbent, the new theta."""
        trials = self.state.trials
        values = np.array([t.value for t in trials if t.ok], dtype=np.float64)
        x = [self.space.encode(t.params) for t in trials if t.ok]
        y = list(values)
        if self.failures == "worst":
            failed = [self.space.encode(t.params) for t in trials if not t.ok]
            x += failed
            y += [float(values.max())] * len(failed)
        gp = fit_gp(
            np.array(x),
            np.array(y),
            prior=self.prior,
            restarts=self.restarts,
            init=None if theta is None else np.array(theta),
            seed=rng,
        )
        best = float(gp.standardise(values.min()))
        theta = gp.theta
        for point in pending:
            gp = gp.condition(point, self._fantasy(gp, point))
        return gp, best, theta

    def _fantasy(self, gp: GP, point: np.ndarray) -> float:
        if self.batch == "constant_liar":
            return float(np.min(gp.y))
        return float(gp.predict(point[None])[0][0])

    def _design_point(self, initial: int, taken: np.ndarray, rng: np.random.Generator):
        """The next point of the Sobol design that is not taken (random ones once it runs out)."""
        if self._design is None:
            size = max(64, 1 << (4 * self.n_initial - 1).bit_length())
            sobol = qmc.Sobol(self.space.width, scramble=True, rng=self.seed)
            self._design = sobol.random(size)
        while initial < len(self._design):
            point = self.space.snap(self._design[initial])
            initial += 1
            if taken.size == 0 or not np.any(np.all(np.abs(taken - point) <= 1e-12, axis=1)):
                return point, initial
        for _ in range(1000):
            point = self.space.snap(rng.random(self.space.width))
            if not np.any(np.all(np.abs(taken - point) <= 1e-12, axis=1)):
                return point, initial
        return point, initial  # a tiny space, every configuration tried: repeat one

    # -- persistence --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Settings and state as JSON-friendly values; :meth:`from_dict` reads them back."""
        state = self.state
        return {
            "format": _FORMAT,
            "space": self.space.to_dict(),
            "settings": {
                "n_initial": self.n_initial,
                "acquisition": self.acquisition,
                "kappa": self.kappa,
                "batch": self.batch,
                "failures": self.failures,
                "prior": asdict(self.prior),
                "restarts": self.restarts,
                "seed": self.seed,
            },
            "state": {
                "trials": [asdict(t) for t in state.trials],
                "pending": [dict(p) for p in state.pending],
                "asks": state.asks,
                "initial": state.initial,
                "theta": None if state.theta is None else list(state.theta),
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Optimizer:
        """The optimiser described by :meth:`to_dict`."""
        if data.get("format") != _FORMAT:
            raise ValueError(
                f"not a saved geocryo optimiser (format {data.get('format')!r}, "
                f"expected {_FORMAT!r})"
            )
        settings = dict(data["settings"])
        prior = settings.pop("prior")
        prior = Prior(**{k: tuple(v) if isinstance(v, list) else v for k, v in prior.items()})
        optimizer = cls(Space.from_dict(data["space"]), prior=prior, **settings)
        state = data["state"]
        optimizer.state = State(
            trials=tuple(Trial(**t) for t in state["trials"]),
            pending=tuple(dict(p) for p in state["pending"]),
            asks=int(state["asks"]),
            initial=int(state["initial"]),
            theta=None if state["theta"] is None else tuple(state["theta"]),
        )
        return optimizer

    def save(self, path: str | os.PathLike) -> Path:
        """Write settings and state to a JSON file (atomically: a crash leaves the old file)."""
        from ..io.atomic import atomic_write  # here: geocryo.io imports the catalogs' stack

        path = Path(path).expanduser()
        text = json.dumps(self.to_dict(), indent=1)
        with atomic_write(
            path, overwrite=True, replaceable=Path.is_file, what="a file", directory=False
        ) as staging:
            staging.write_text(text)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Optimizer:
        """Read an optimiser written by :meth:`save`."""
        path = Path(path).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"no saved optimiser at {path}")
        return cls.from_dict(json.loads(path.read_text()))


def minimize(
    objective: Callable[..., float],
    space: Space | Mapping[str, Dimension],
    n_calls: int,
    *,
    batch_size: int = 1,
    **options: Any,
) -> Optimizer:
    """Minimise ``objective(**params)`` with ``n_calls`` evaluations, one batch at a time.

    An evaluation that raises is told as a failed trial (with the exception's message) and the
    search goes on. ``options`` go to :class:`Optimizer`; the optimiser is returned.
    """
    n_calls = integer("n_calls", n_calls, low=1)
    optimizer = Optimizer(space, **options)
    while len(optimizer.state.trials) < n_calls:
        size = min(batch_size, n_calls - len(optimizer.state.trials))
        for params in optimizer.ask(size):
            try:
                value, error = objective(**params), None
            except Exception as exc:  # a failed evaluation is data, not the end of the search
                value, error = None, f"{type(exc).__name__}: {exc}"
            optimizer.tell(params, value, error)
    return optimizer
