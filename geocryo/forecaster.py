"""Deprecated alias of :mod:`geocryo.forecast`, kept for one release."""

from ._moved import alias

alias(__name__, "geocryo.forecast")
