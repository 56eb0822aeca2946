"""The training toolkit: small pieces you combine in your own loop (metrics, early stopping,
checkpoints, a run logger and a progress bar). Nothing here runs the loop for you."""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .early_stopping import EarlyStopping
from .logger import RunLogger
from .metrics import accuracy, mae, mse, r2, rmse
from .progress import progress

__all__ = ["mse", "rmse", "mae", "r2", "accuracy", "EarlyStopping", "save_checkpoint",
           "load_checkpoint", "CheckpointError", "RunLogger", "progress"]
