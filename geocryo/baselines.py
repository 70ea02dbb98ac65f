"""Deprecated alias of :mod:`geocryo.evaluation.baselines`, kept for one release."""

from ._moved import alias

alias(__name__, "geocryo.evaluation.baselines")
