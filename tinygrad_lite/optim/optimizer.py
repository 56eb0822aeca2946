"""The Optimizer base class: parameter groups, per-parameter state, zero_grad and state dicts.

A subclass writes only ``step()``: for each group and each parameter with a gradient, read
``p.grad.data`` and update ``p`` in place. Updates run under ``no_grad`` (they are not part of
the model's graph) and use NumPy arrays for the arithmetic, one vectorised expression per
parameter, then write the result into the parameter with an in-place Tensor method (``sub_``,
``mul_``), which also bumps the tensor's version counter so a stale graph cannot use old values.
"""

from __future__ import annotations

import copy

import numpy as np

from ..checks import check_flag, check_number  # noqa: F401  (also imported from here)
from ..tensor import Tensor


class Optimizer:
    """Holds ``param_groups`` (a list of dicts: ``{"params": [...], "lr": ..., ...}``) and
    ``state`` (a dict from parameter to that parameter's buffers, e.g. momentum)."""

    # The names of the per-parameter buffers a subclass keeps in ``state`` (checked on load).
    state_keys: frozenset = frozenset()

    def __init__(self, params, defaults: dict):
        self.defaults = self.check_options(dict(defaults))
        self.param_groups: list[dict] = []
        self.state: dict = {}  # parameter (hashed by identity) -> dict of its buffers
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of tensors (e.g. model.parameters()), "
                            "got a single Tensor; wrap it in a list")
        try:
            params = list(params)
        except TypeError:
            raise TypeError(f"{type(self).__name__}: params must be an iterable of tensors (e.g. "
                            f"model.parameters()), got {type(params).__name__}") from None
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Add a group of parameters; options it does not set come from the defaults."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError("a parameter group must be a dict with a 'params' entry")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameter {i} is a "
                                f"{type(p).__name__}, not a Tensor")
            if p.dtype.kind != "f":
                raise TypeError(f"{type(self).__name__}: parameter {i} has dtype {p.dtype}; "
                                f"only floating-point tensors can be optimised")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: parameter {i} (shape {p.shape}) is "
                                 f"not a leaf tensor; optimise the tensors you created, not "
                                 f"results computed from them")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError(f"{type(self).__name__}: a parameter appears in more than one "
                             f"place; each parameter may be given only once")
        filled = {**self.defaults, **group, "params": params}
        for name, value in filled.items():
            if name != "params" and value is None:
                raise ValueError(f"{type(self).__name__}: option {name!r} is required")
        self.param_groups.append(self.check_options(filled))

    def check_options(self, options: dict) -> dict:
        """Check the hyperparameters in ``options`` (a group, or the defaults) and return them
        normalised (floats, bools); a subclass adds its own after ``super().check_options``.
        Runs in the constructor, ``add_param_group`` and ``load_state_dict``."""
        if "lr" in options:  # an Optimizer subclass written by a user may have no lr
            options["lr"] = check_number(type(self).__name__, "lr", options["lr"])
        return options

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``p.grad = None`` (the default, cheapest) or fill them with 0."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def step(self) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    # -- saving and restoring ----------------------------------------------------------------

    def state_dict(self) -> dict:
        """The optimizer's state with parameters replaced by their position (0, 1, ... across
        all groups), as in PyTorch: ``{"state": {index: {...}}, "param_groups": [...]}``.
        Arrays are copies, so later steps do not change a saved state dict."""
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index[id(p)] = len(index)
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a state saved by ``state_dict()`` into an optimizer over the same parameters
        (same groups, same sizes, same shapes); mismatches raise a ValueError that says which."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            got = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{name}.load_state_dict: expected a dict with keys 'state' and "
                             f"'param_groups', got {got}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the saved state has {len(saved_groups)} "
                             f"parameter groups, this optimizer has {len(self.param_groups)}")
        params, checked_groups = [], []
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            missing = sorted(set(self.defaults) - set(saved))
            if missing:
                raise ValueError(f"{name}.load_state_dict: group {i} of the saved state has no "
                                 f"{missing}: was it saved by another optimizer?")
            checked = {k: (tuple(v) if isinstance(v, list) else copy.deepcopy(v))
                       for k, v in saved.items() if k != "params"}
            checked_groups.append(self.check_options(checked))
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: group {i} has "
                                 f"{len(saved['params'])} parameters in the saved state but "
                                 f"{len(group['params'])} here")
            params.extend(group["params"])
        new_state = {}
        for key, buffers in state_dict["state"].items():
            i = int(key)  # JSON round trips turn the integer keys into strings
            if not 0 <= i < len(params):
                raise ValueError(f"{name}.load_state_dict: state for parameter {i}, but there "
                                 f"are only {len(params)} parameters")
            p = params[i]
            restored = {}
            unknown = sorted(set(buffers) - self.state_keys)
            if unknown:
                raise ValueError(f"{name}.load_state_dict: state of parameter {i} has buffers "
                                 f"{unknown} that {name} does not use (it keeps "
                                 f"{sorted(self.state_keys)}): was it saved by another "
                                 f"optimizer?")
            for k, v in buffers.items():
                if isinstance(v, np.ndarray):
                    if v.shape != p.shape:
                        raise ValueError(f"{name}.load_state_dict: buffer {k!r} of parameter {i} "
                                         f"has shape {v.shape}, the parameter has shape "
                                         f"{p.shape}")
                    v = v.astype(p.dtype, copy=True)
                restored[k] = v
            new_state[p] = restored
        for checked, group in zip(checked_groups, self.param_groups):  # all checked: assign
            group.update(checked)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            options = ", ".join(f"{k}={v}" for k, v in group.items() if k != "params")
            lines.append(f"  group {i}: {len(group['params'])} tensors, {options}")
        return "\n".join(lines + [")"])


# --------------------------------------------------------------------------------------------
# Checking hyperparameters (optimizers and schedulers share these; check_number and check_flag
# are the package's checkers from tinygrad_lite/checks.py)
# --------------------------------------------------------------------------------------------

def check_betas(owner: str, betas) -> tuple:
    """Adam's (beta1, beta2): two numbers, each in [0, 1) (beta = 1 never forgets and divides
    by zero in the bias correction)."""
    if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
        raise TypeError(f"{owner}: invalid betas={betas!r}: betas must be a pair "
                        f"(beta1, beta2) of numbers in [0, 1)")
    return tuple(check_number(owner, f"beta{i + 1}", b, 0.0, 1.0, high_open=True)
                 for i, b in enumerate(betas))
