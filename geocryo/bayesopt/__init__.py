"""Bayesian optimisation with Gaussian processes in JAX (float64): spaces, GP, acquisitions.

>>> from geocryo.bayesopt import Optimizer, Real, Integer, Categorical
>>> opt = Optimizer({"lr": Real(1e-4, 1e-1, log=True), "layers": Integer(1, 3)}, seed=0)
>>> params = opt.ask(2)                      # two configurations to try in parallel
>>> opt.tell(params, [0.31, float("nan")])   # the second one failed
>>> opt.save("search.json")

See :mod:`geocryo.bayesopt.space`, :mod:`~geocryo.bayesopt.gp`,
:mod:`~geocryo.bayesopt.acquisition`, :mod:`~geocryo.bayesopt.maximize` and
:mod:`~geocryo.bayesopt.optimizer`.
"""

from .acquisition import log_ei as log_ei
from .acquisition import ucb as ucb
from .gp import GP as GP
from .gp import Prior as Prior
from .gp import fit_gp as fit_gp
from .optimizer import Optimizer as Optimizer
from .optimizer import Trial as Trial
from .optimizer import minimize as minimize
from .space import Categorical as Categorical
from .space import Integer as Integer
from .space import Real as Real
from .space import Space as Space
