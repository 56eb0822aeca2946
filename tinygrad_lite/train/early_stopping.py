"""Stop training when the monitored metric stops improving."""

from __future__ import annotations

import math


class EarlyStopping:
    """Call ``step(metric)`` once per epoch; it returns True when training should stop.

    An epoch improves when ``metric < best - min_delta`` (mode "min") or
    ``metric > best + min_delta`` (mode "max"); after ``patience`` epochs in a row without an
    improvement, ``should_stop`` becomes True. ``improved`` tells whether the last step was a
    new best (handy for saving the best checkpoint).
    """

    def __init__(self, patience: int = 10, min_delta: float = 0.0, mode: str = "min"):
        if patience < 1:
            raise ValueError(f"EarlyStopping: patience must be >= 1, got {patience}")
        if min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta}")
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        self.patience, self.min_delta, self.mode = int(patience), float(min_delta), mode
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1
        self.epochs_without_improvement = 0
        self.epoch = -1
        self.improved = False
        self.should_stop = False

    def step(self, metric) -> bool:
        value = float(metric)
        if math.isnan(value):
            raise ValueError("EarlyStopping.step: the monitored metric is NaN")
        self.epoch += 1
        if self.mode == "min":
            self.improved = value < self.best - self.min_delta
        else:
            self.improved = value > self.best + self.min_delta
        if self.improved:
            self.best, self.best_epoch = value, self.epoch
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        self.should_stop = self.epochs_without_improvement >= self.patience
        return self.should_stop

    def state_dict(self) -> dict:
        return dict(self.__dict__)

    def load_state_dict(self, state_dict: dict) -> None:
        unknown = set(state_dict) - set(self.__dict__)
        if unknown:
            raise ValueError(f"EarlyStopping.load_state_dict: unexpected keys {sorted(unknown)}")
        self.__dict__.update(state_dict)
