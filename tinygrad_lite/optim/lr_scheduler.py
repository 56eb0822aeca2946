"""Learning-rate schedules: they change ``group["lr"]`` of an optimizer as training goes on.

Call ``scheduler.step()`` once per epoch (or per iteration, for warmup schedules) after
``optimizer.step()``; ``ReduceLROnPlateau.step(metric)`` takes the monitored value.
"""

from __future__ import annotations

import math

from .optimizer import Optimizer, check_number


def _check_optimizer(optimizer, scheduler: str) -> None:
    # A ZeroRedundancyOptimizer too (an Optimizer subclass in PyTorch): its param_groups are
    # the user's, and its step() reads their "lr".
    from .zero import ZeroRedundancyOptimizer
    if not isinstance(optimizer, (Optimizer, ZeroRedundancyOptimizer)):
        raise TypeError(f"{scheduler} needs an Optimizer, got {type(optimizer).__name__}")


def _as_list(scheduler: str, name: str, values) -> list:
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{scheduler}: {name} must be a list, got {type(values).__name__}")
    return list(values)


class _SchedulerState:
    """What every scheduler shares: the current learning rates, and its state as a dict (all its
    attributes except the optimizer) for checkpoints."""

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a state saved by ``state_dict()``; every setting is checked before any is
        assigned, as in the constructor."""
        name = type(self).__name__
        if not isinstance(state_dict, dict):
            raise TypeError(f"{name}.load_state_dict: expected a dict, got "
                            f"{type(state_dict).__name__}")
        unknown = set(state_dict) - set(self.state_dict())
        if unknown:
            raise ValueError(f"{name}.load_state_dict: unexpected keys {sorted(unknown)}")
        self.__dict__.update(self.check_settings({**self.state_dict(), **state_dict}))

    def check_settings(self, settings: dict) -> dict:
        """Check the scheduler's settings (its attributes, by name) and return them
        normalised; each subclass checks its own. Runs in the constructor and on load."""
        return settings


class LRScheduler(_SchedulerState):
    """Base class of the epoch-indexed schedules: a subclass gives ``lr_at(epoch, base_lr)``.

    As in PyTorch, creating the scheduler already sets the epoch-0 learning rate, and each
    ``step()`` moves to the next epoch.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        _check_optimizer(optimizer, type(self).__name__)
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.__dict__.update(self.check_settings(self.state_dict()))
        self.step()

    def check_settings(self, settings: dict) -> dict:
        name = type(self).__name__
        settings["last_epoch"] = check_number(name, "last_epoch", settings["last_epoch"], -1,
                                              integer=True)
        settings["base_lrs"] = [check_number(name, "initial_lr", lr) for lr in
                                _as_list(name, "base_lrs", settings["base_lrs"])]
        return settings

    def lr_at(self, epoch: int, base_lr: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(self.last_epoch, base_lr)



class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size)"""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def check_settings(self, settings: dict) -> dict:
        """step_size an integer >= 1; gamma finite and > 0."""
        settings = super().check_settings(settings)
        settings["step_size"] = check_number("StepLR", "step_size", settings["step_size"], 1,
                                             integer=True)
        settings["gamma"] = check_number("StepLR", "gamma", settings["gamma"], low_open=True)
        return settings

    def lr_at(self, epoch: int, base_lr: float) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """Linear warmup, then cosine annealing from base_lr down to eta_min at epoch T_max:

        lr = base_lr * (epoch + 1) / warmup_steps                              (epoch < warmup)
        lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * s / S)) / 2,
             s = epoch - warmup_steps, S = T_max - warmup_steps              (afterwards)

    With ``warmup_steps=0`` this is PyTorch's CosineAnnealingLR (its closed form); past T_max
    the rate stays at eta_min.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 warmup_steps: int = 0, last_epoch: int = -1):
        self.T_max, self.eta_min, self.warmup_steps = T_max, eta_min, warmup_steps
        super().__init__(optimizer, last_epoch)

    def check_settings(self, settings: dict) -> dict:
        """T_max an integer >= 1; warmup_steps an integer in [0, T_max); eta_min finite >= 0."""
        settings = super().check_settings(settings)
        name = "CosineAnnealingLR"
        settings["T_max"] = check_number(name, "T_max", settings["T_max"], 1, integer=True)
        settings["eta_min"] = check_number(name, "eta_min", settings["eta_min"])
        settings["warmup_steps"] = check_number(name, "warmup_steps", settings["warmup_steps"],
                                                0, settings["T_max"], high_open=True,
                                                integer=True)
        return settings

    def lr_at(self, epoch: int, base_lr: float) -> float:
        if epoch < self.warmup_steps:
            return base_lr * (epoch + 1) / self.warmup_steps
        s = min(epoch, self.T_max) - self.warmup_steps
        span = self.T_max - self.warmup_steps
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * s / span)) / 2


class ReduceLROnPlateau(_SchedulerState):
    """Multiply the learning rate by ``factor`` when the monitored metric has not improved for
    more than ``patience`` epochs (PyTorch's rules, including its ``eps``):

        improved (mode "min", threshold_mode "rel"):  metric < best * (1 - threshold)
        improved (mode "min", threshold_mode "abs"):  metric < best - threshold
        (mode "max" mirrors these)
        on a reduction: lr = max(lr * factor, min_lr), skipped if it changes lr by <= eps;
        then wait ``cooldown`` epochs before counting bad epochs again.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr=0.0, eps: float = 1e-8):
        _check_optimizer(optimizer, "ReduceLROnPlateau")
        n = len(optimizer.param_groups)
        min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * n
        if len(min_lrs) != n:
            raise ValueError(f"ReduceLROnPlateau: {len(min_lrs)} min_lr values for {n} groups")
        self.optimizer = optimizer
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.min_lrs, self.eps = cooldown, min_lrs, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self.__dict__.update(self.check_settings(self.state_dict()))

    def check_settings(self, settings: dict) -> dict:
        """mode "min"/"max", threshold_mode "rel"/"abs"; factor in (0, 1); patience, cooldown
        (and the counters) integers >= 0; threshold, eps, each min_lr finite and >= 0."""
        name = "ReduceLROnPlateau"
        if settings["mode"] not in ("min", "max"):
            raise ValueError(f"{name}: mode must be 'min' or 'max', got {settings['mode']!r}")
        if settings["threshold_mode"] not in ("rel", "abs"):
            raise ValueError(f"{name}: threshold_mode must be 'rel' or 'abs', got "
                             f"{settings['threshold_mode']!r}")
        settings["factor"] = check_number(name, "factor", settings["factor"], 0.0, 1.0,
                                          low_open=True, high_open=True)
        for key in ("patience", "cooldown", "num_bad_epochs", "cooldown_counter", "last_epoch"):
            settings[key] = check_number(name, key, settings[key], integer=True)
        for key in ("threshold", "eps"):
            settings[key] = check_number(name, key, settings[key])
        settings["min_lrs"] = [check_number(name, "min_lr", v) for v in
                               _as_list(name, "min_lrs", settings["min_lrs"])]
        best = settings["best"]
        if isinstance(best, (bool, str)) or not isinstance(best, (int, float)) or best != best:
            raise ValueError(f"{name}: best must be a number (not NaN), got {best!r}")
        return settings

    def is_better(self, value: float, best: float) -> bool:
        if self.mode == "min":
            limit = best * (1 - self.threshold) if self.threshold_mode == "rel" \
                else best - self.threshold
            return value < limit
        limit = best * (1 + self.threshold) if self.threshold_mode == "rel" \
            else best + self.threshold
        return value > limit

    def step(self, metrics) -> None:
        """Record one epoch's metric (a number or one-element tensor) and maybe reduce lr."""
        try:  # (a string would convert too: refuse it, it is almost surely a mistake)
            value = float(metrics) if not isinstance(metrics, (str, bytes)) else None
        except (TypeError, ValueError):
            value = None
        if value is None:
            raise TypeError(f"ReduceLROnPlateau.step: metrics must be a number or a one-element "
                            f"tensor, got {metrics!r} ({type(metrics).__name__})")
        if math.isnan(value):
            raise ValueError("ReduceLROnPlateau.step: the monitored metric is NaN")
        self.last_epoch += 1
        if self.is_better(value, self.best):
            self.best = value
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:  # in cooldown: bad epochs do not count
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

    def _reduce_lr(self) -> None:
        for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
            old = group["lr"]
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new
