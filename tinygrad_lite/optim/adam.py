"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay."""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import no_grad
from .optimizer import Optimizer, check_betas, check_number


class Adam(Optimizer):
    """PyTorch's Adam. For each parameter p with gradient g, at step t = 1, 2, ...:

        g = g + weight_decay * p                     (L2 penalty folded into the gradient)
        m = beta1 * m + (1 - beta1) * g              (first moment)
        v = beta2 * v + (1 - beta2) * g^2            (second moment)
        p = p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
    """

    decoupled_weight_decay = False
    state_keys = frozenset({"step", "exp_avg", "exp_avg_sq"})

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def check_options(self, options: dict) -> dict:
        """lr, eps, weight_decay finite and >= 0; each beta in [0, 1)."""
        options = super().check_options(options)
        name = type(self).__name__
        options["betas"] = check_betas(name, options["betas"])
        for key in ("eps", "weight_decay"):
            options[key] = check_number(name, key, options[key])
        return options

    @no_grad()
    @np.errstate(all="ignore")  # NaN/Inf gradients give NaN/Inf parameters silently, as in torch
    def step(self) -> None:
        for group in self.param_groups:
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.setdefault(p, {})
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = np.zeros_like(p.data)
                    state["exp_avg_sq"] = np.zeros_like(p.data)
                state["step"] += 1
                # The whole update (weight decay, both moments, bias correction, the step) in
                # one fused pass over p, g, m, v: csrc/adam.c, or its NumPy reference
                # (kernels.reference_adam_step) with TGL_BACKEND=numpy.
                kernels.adam_step(p.data, p.grad.data, state["exp_avg"], state["exp_avg_sq"],
                                  lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=wd,
                                  decoupled=self.decoupled_weight_decay, step=state["step"])
                p._bump_version()  # p.data changed in place: a pending backward must see it


class AdamW(Adam):
    """PyTorch's AdamW: Adam with decoupled weight decay. At step t, before the Adam update:

        p = p - lr * weight_decay * p

    and the gradient itself is left alone (so the decay is not rescaled by 1/sqrt(v)).
    """

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
