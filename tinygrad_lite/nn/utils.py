"""Helpers that act on a model's parameters (``torch.nn.utils``)."""

from __future__ import annotations

import math

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor


@no_grad()
def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    total = (sum over every gradient element of |g|^p)^(1/p)   (max |g| for p = inf);
    if total > max_norm, every g is multiplied by max_norm / (total + 1e-6).
    Returns ``total`` (the norm before clipping) as a float.
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    if max_norm < 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    if not grads:
        return 0.0
    norm_type = float(norm_type)
    if norm_type == math.inf:
        total = max(float(np.abs(g.data).max()) if g.data.size else 0.0 for g in grads)
    elif norm_type == 2.0:  # the common case, without the abs and pow passes
        total = math.sqrt(sum(float(np.sum(np.square(g.data), dtype=np.float64)) for g in grads))
    else:
        total = float(sum(np.sum(np.abs(g.data.astype(np.float64)) ** norm_type)
                          for g in grads) ** (1.0 / norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total gradient norm is {total}; set "
                           f"error_if_nonfinite=False to clip anyway")
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for g in grads:
            g.mul_(scale)
    return total


def functional_call(module, parameters: dict, *args, **kwargs):
    """Run ``module(*args, **kwargs)`` with some parameters replaced by the given tensors
    (by dotted name, as in ``named_parameters``), then put the originals back. Gradients then
    flow to the given tensors -- this is how ``gradcheck`` checks a layer's parameters."""
    owners = {}
    for module_name, owner in module.named_modules():
        for name in owner._parameters:
            owners[f"{module_name}.{name}" if module_name else name] = (owner, name)
    unknown = [name for name in parameters if name not in owners]
    if unknown:
        raise KeyError(f"functional_call: {type(module).__name__} has no parameters {unknown}")
    originals = {name: owners[name][0]._parameters[owners[name][1]] for name in parameters}
    try:
        for name, tensor in parameters.items():
            owner, attr = owners[name]
            owner._parameters[attr] = tensor
        return module(*args, **kwargs)
    finally:
        for name, tensor in originals.items():
            owner, attr = owners[name]
            owner._parameters[attr] = tensor
