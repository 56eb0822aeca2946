"""RMSprop: divide each gradient by a running root-mean-square of its recent values."""

from __future__ import annotations

import numpy as np

from ..autograd import no_grad
from .optimizer import Optimizer, check_flag, check_number


class RMSprop(Optimizer):
    """PyTorch's RMSprop. For each parameter p with gradient g, at every step:

        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g^2                 (running mean of g², starts at 0)
        m = alpha * m + (1 - alpha) * g                   (centered only: running mean of g)
        d = sqrt(v - m^2) + eps  if centered  else  sqrt(v) + eps
        b = momentum * b + g / d;  p = p - lr * b         (momentum > 0; b starts at 0)
        p = p - lr * g / d                                (momentum = 0)

    "centered" divides by an estimate of the gradient's standard deviation instead of its
    root mean square.
    """

    state_keys = frozenset({"step", "square_avg", "grad_avg", "momentum_buffer"})

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def check_options(self, options: dict) -> dict:
        """lr, eps, weight_decay, momentum finite and >= 0; alpha in [0, 1]."""
        options = super().check_options(options)
        name = type(self).__name__
        options["alpha"] = check_number(name, "alpha", options["alpha"], 0.0, 1.0)
        for key in ("eps", "weight_decay", "momentum"):
            options[key] = check_number(name, key, options[key])
        options["centered"] = check_flag(name, "centered", options["centered"])
        return options

    @no_grad()
    @np.errstate(all="ignore")  # NaN/Inf gradients give NaN/Inf parameters silently, as in torch
    def step(self) -> None:
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            wd, momentum = group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.data
                if wd != 0:
                    g = g + wd * p.data
                state = self.state.setdefault(p, {})
                if not state:
                    state["step"] = 0
                    state["square_avg"] = np.zeros_like(p.data)
                    if momentum > 0:
                        state["momentum_buffer"] = np.zeros_like(p.data)
                    if group["centered"]:
                        state["grad_avg"] = np.zeros_like(p.data)
                state["step"] += 1
                square_avg = state["square_avg"]  # all buffers are updated in place
                square_avg *= alpha
                square_avg += (1 - alpha) * g * g
                if group["centered"]:
                    grad_avg = state.setdefault("grad_avg", np.zeros_like(p.data))
                    grad_avg *= alpha
                    grad_avg += (1 - alpha) * g
                    denom = np.sqrt(square_avg - grad_avg * grad_avg) + eps
                else:
                    denom = np.sqrt(square_avg) + eps
                if momentum > 0:
                    buf = state.setdefault("momentum_buffer", np.zeros_like(p.data))
                    buf *= momentum
                    buf += g / denom
                    p.sub_(lr * buf)
                else:
                    p.sub_(lr * g / denom)
