"""Neural networks of geocryo (Flax)."""

from .convlstm import ConvLSTM as ConvLSTM
from .convlstm import StackedConvLSTM as StackedConvLSTM
