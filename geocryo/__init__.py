"""geocryo: learning the permafrost carbon feedback from multimodal Earth observations."""

from importlib.metadata import PackageNotFoundError, version

from . import accessor as accessor  # registers the ds.geocryo accessor
from . import baselines as baselines
from . import bayesopt as bayesopt
from . import metrics as metrics
from . import synthetic as synthetic
from .catalog import open_catalog as open_catalog
from .catalog import open_cube as open_cube
from .cube import TARGETS as TARGETS
from .cube import CubeError as CubeError
from .cube import features as features
from .cube import targets as targets
from .cube import validate as validate
from .evaluate import evaluate as evaluate
from .forecaster import Forecaster as Forecaster
from .forecaster import fit as fit
from .forecaster import load as load
from .io import open_zarr as open_zarr
from .io import write_zarr as write_zarr
from .preprocess import TimeSplit as TimeSplit
from .tune import tune as tune

try:
    __version__ = version("geocryo")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
