"""Time splits and the preprocessing plan: fitted on the training period only.

:class:`TimeSplit` cuts the record into chronological train / validation / test periods with a
look-back gap between them; :class:`Preprocessor` fits standardisation, optional per-pixel
detrending and PCA of many-band variables on the training months, and the
:class:`FittedPreprocessor` applies them lazily to any month, inverts them for the targets, and
saves with a model. :class:`Outlook` adds the training climatology of the forecast month,
:func:`with_drivers` the forecast month's value of the variables known ahead (the drivers).
"""

from .outlook import DRIVER_SUFFIX as DRIVER_SUFFIX
from .outlook import OUTLOOK_SUFFIX as OUTLOOK_SUFFIX
from .outlook import Outlook as Outlook
from .outlook import with_drivers as with_drivers
from .plan import SPREAD_SUFFIX as SPREAD_SUFFIX
from .plan import FittedPreprocessor as FittedPreprocessor
from .plan import PreprocessConfig as PreprocessConfig
from .plan import Preprocessor as Preprocessor
from .split import PARTS as PARTS
from .split import TimeSplit as TimeSplit

__all__ = [
    "DRIVER_SUFFIX",
    "OUTLOOK_SUFFIX",
    "PARTS",
    "SPREAD_SUFFIX",
    "FittedPreprocessor",
    "Outlook",
    "PreprocessConfig",
    "Preprocessor",
    "TimeSplit",
    "with_drivers",
]
