"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay."""

from __future__ import annotations

import numpy as np

from ..autograd import no_grad
from .optimizer import Optimizer, check_flag, check_number


class SGD(Optimizer):
    """PyTorch's SGD. For each parameter p with gradient g, at step t:

        g = g + weight_decay * p
        b = g                                   (t = 1, no dampening on the first step)
        b = momentum * b + (1 - dampening) * g  (t > 1)
        g = g + momentum * b  if nesterov  else  b      (only when momentum != 0)
        p = p - lr * g
    """

    state_keys = frozenset({"momentum_buffer"})

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def check_options(self, options: dict) -> dict:
        """lr, momentum, weight_decay >= 0; dampening in [0, 1]; nesterov needs momentum > 0
        and dampening = 0 (all finite)."""
        options = super().check_options(options)
        name = type(self).__name__
        for key in ("momentum", "weight_decay"):
            options[key] = check_number(name, key, options[key])
        options["dampening"] = check_number(name, "dampening", options["dampening"], 0.0, 1.0)
        options["nesterov"] = check_flag(name, "nesterov", options["nesterov"])
        if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError(f"{name}: nesterov momentum needs momentum > 0 and dampening = 0, "
                             f"got momentum={options['momentum']}, "
                             f"dampening={options['dampening']}")
        return options

    @no_grad()
    @np.errstate(all="ignore")  # NaN/Inf gradients give NaN/Inf parameters silently, as in torch
    def step(self) -> None:
        for group in self.param_groups:
            lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.data
                if wd != 0:
                    g = g + wd * p.data
                if momentum != 0:
                    state = self.state.setdefault(p, {})
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = np.array(g, dtype=p.dtype, copy=True)
                    else:
                        buf *= momentum
                        buf += (1 - group["dampening"]) * g
                    g = g + momentum * buf if group["nesterov"] else buf
                p.sub_(lr * g)
