"""Sphinx configuration of the geocryo documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors; the test suite
does the same). The notebooks in ``examples/`` (linked here as ``docs/examples``) are rendered as
they are stored, without executing them: the test suite executes them.
"""

from importlib import metadata

project = "geocryo"
author = "geocryo developers"
copyright = "geocryo developers"
try:
    release = metadata.version("geocryo")
except metadata.PackageNotFoundError:
    release = "unknown"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]

# Markdown pages and notebooks (MyST); $...$ and $$...$$ maths.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "off"

# numpydoc-style docstrings, read by napoleon.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": False}

exclude_patterns = ["_build", "**/.ipynb_checkpoints"]
html_theme = "pydata_sphinx_theme"
html_title = "geocryo"
html_theme_options = {"show_toc_level": 2, "navigation_with_keys": False}
