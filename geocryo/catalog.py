"""Deprecated alias of :mod:`geocryo.io.catalog`, kept for one release."""

from ._moved import alias

alias(__name__, "geocryo.io.catalog")
