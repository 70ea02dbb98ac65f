"""Supervised windows and patches: batches of numpy arrays from a cube, ready for JAX."""

from .channels import MODES as MODES
from .stream import ENGINES as ENGINES
from .stream import Batch as Batch
from .stream import PatchStream as PatchStream
from .windows import WindowSpec as WindowSpec
