"""Optimizers (SGD, Adam, AdamW, RMSprop; ZeroRedundancyOptimizer shards any of them over MPI ranks) and learning-rate schedules (``optim.lr_scheduler``)."""

from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD
from .zero import ZeroRedundancyOptimizer

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "ZeroRedundancyOptimizer",
           "lr_scheduler"]
