"""The neural-network ops: softmax, log-softmax, cross-entropy, layer norm and linear.

Each could be written as a composition of the elementwise and reduce ops, but as one Function
each they are much cheaper: softmax, log-softmax and cross-entropy run on the C kernels (fused),
layer norm replaces about nine ops, and linear adds its bias inside the GEMM. Their argument
checks live in ``nn/functional.py`` (``softmax`` and ``log_softmax`` here, because
``Tensor.softmax`` calls them too).

Forward works on NumPy arrays, backward on Tensors (the readable statement of the math, used
when the backward pass is itself recorded). Where speed matters an op adds
``backward_arrays``: the same first derivative on arrays, which the walk uses otherwise (see
``Function`` in autograd.py).
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import Function, unbroadcast
from ..checks import check_dim, check_float, check_tensor
from ..tensor import Tensor


def _last_axis(fn, x: np.ndarray, axis: int, *more: np.ndarray) -> np.ndarray:
    """Run a kernel that works on the last axis over any ``axis`` (moving it there and back)."""
    if axis == x.ndim - 1:
        return fn(x, *more)
    moved = [np.ascontiguousarray(np.moveaxis(a, axis, -1)) for a in (x,) + more]
    return np.moveaxis(fn(*moved), -1, axis)


def _softmax_axis(x: Tensor, dim: int, op: str) -> int:
    check_tensor(op, "input", x)
    check_float(op, "input", x)
    dim = check_dim(op, dim, x.ndim)
    if x.ndim == 0:  # (check_dim lets a 0-d tensor's dims 0 and -1 through, as PyTorch does)
        raise ValueError(f"{op} needs at least one dimension, got a 0-d tensor")
    return dim


# --------------------------------------------------------------------------------------------
# Softmax and log-softmax
# --------------------------------------------------------------------------------------------

class Softmax(Function):
    """y = exp(x) / sum(exp(x));  dx = y * (g - sum(g * y))"""
    uses_inputs, uses_output = False, True

    def forward(self, x):
        return _last_axis(kernels.softmax, x, self.axis)

    def backward(self, g, y):
        return y * (g - (g * y).sum(self.axis, keepdims=True))

    def backward_arrays(self, g, y):
        return _last_axis(kernels.softmax_backward, y, self.axis, g)  # the fused kernel


class LogSoftmax(Function):
    """y = x - logsumexp(x);  dx = g - exp(y) * sum(g)"""
    uses_inputs, uses_output = False, True

    def forward(self, x):
        return _last_axis(kernels.log_softmax, x, self.axis)

    def backward(self, g, y):
        return g - y.exp() * g.sum(self.axis, keepdims=True)

    def backward_arrays(self, g, y):
        return _last_axis(kernels.log_softmax_backward, y, self.axis, g)


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    return Softmax.apply(x, axis=_softmax_axis(x, dim, "softmax"))


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    return LogSoftmax.apply(x, axis=_softmax_axis(x, dim, "log_softmax"))


# --------------------------------------------------------------------------------------------
# Cross-entropy
# --------------------------------------------------------------------------------------------

class CrossEntropy(Function):
    """loss_i = logsumexp(x_i) - sum_c q_ic x_ic, q = (1-eps)·onehot + eps/C;
    dx_i = (softmax(x_i) - q_i) · w_i, where w_i is the weight of row i in the reduction"""
    uses_inputs = True

    def forward(self, logits):
        n, classes = logits.shape
        keep = self.targets != self.ignore_index
        self.count = int(keep.sum())
        if self.reduction == "mean" and self.label_smoothing == 0.0:
            # The fused kernel: loss and, when a backward may follow, the gradient in one pass.
            loss, self.dlogits = kernels.cross_entropy(
                logits, self.targets, self.ignore_index, compute_grad=self.needs_grad)
            return np.asarray(loss, dtype=logits.dtype)
        logp = _last_axis(kernels.log_softmax, logits, 1)
        safe = np.where(keep, self.targets, 0)
        nll = -logp[np.arange(n), safe]
        if self.label_smoothing:
            eps = self.label_smoothing
            nll = (1 - eps) * nll - eps * logp.mean(axis=1)
        losses = (nll * keep).astype(logits.dtype)
        if self.reduction == "none":
            return losses
        if self.reduction == "sum":
            return np.asarray(losses.sum(), dtype=logits.dtype)
        return np.asarray(losses.sum() / self.count if self.count else np.nan, dtype=logits.dtype)

    def target_distribution(self, dtype) -> np.ndarray:
        """q: one-hot rows of the targets (all zero for ignored rows), label-smoothed."""
        n, classes = self.inputs[0].shape
        q = np.zeros((n, classes), dtype=dtype)
        keep = self.targets != self.ignore_index
        q[np.arange(n)[keep], self.targets[keep]] = 1.0
        if self.label_smoothing:
            q = q * (1 - self.label_smoothing) + self.label_smoothing / classes
        return q

    def row_weights(self, g: Tensor) -> Tensor:
        """How much d(loss)/d(loss_i) each row gets: g (per row for 'none'), / count for 'mean'."""
        keep = Tensor._make((self.targets != self.ignore_index).astype(g.dtype))
        if self.reduction == "none":
            return (g * keep).reshape(-1, 1)
        scale = 1.0 / max(self.count, 1) if self.reduction == "mean" else 1.0
        return (g * scale * keep).reshape(-1, 1)

    def backward(self, g, out):
        logits = self.inputs[0]
        q = Tensor._make(self.target_distribution(logits.dtype))
        return (softmax(logits, 1) - q) * self.row_weights(g)

    def backward_arrays(self, g, out):
        fused = getattr(self, "dlogits", None)
        if fused is None:  # no fused gradient (a reduction or smoothing the kernel does not do)
            return self.backward(Tensor._make(g), None).data
        # The kernel already computed (softmax - onehot)/count. For the usual loss.backward()
        # (g = 1) hand it on as it is: no (N, V) multiply, no copy.
        return fused if g == 1 else g * fused


# --------------------------------------------------------------------------------------------
# Layer norm and linear (named ...Op: nn.LayerNorm and nn.Linear are the Modules that use them)
# --------------------------------------------------------------------------------------------

class LayerNormOp(Function):
    """y = xhat * w + b with xhat = (x - mean) * rstd, rstd = 1/sqrt(var + eps) over the last axes;
    dx = rstd * (gx - mean(gx) - xhat * mean(gx * xhat)) with gx = g * w;
    dw = sum(g * xhat), db = sum(g) over the leading axes"""

    def forward(self, x, w, b):
        mean = x.mean(axis=self.axes, keepdims=True)
        centered = x - mean
        self.rstd = 1.0 / np.sqrt((centered * centered).mean(axis=self.axes, keepdims=True)
                                  + self.eps)
        self.xhat = centered * self.rstd  # saved: backward_arrays needs only these
        return self.xhat * w + b

    def backward(self, g, out):
        x, w, b = self.inputs
        centered = x - x.mean(axis=self.axes, keepdims=True)
        rstd = ((centered * centered).mean(axis=self.axes, keepdims=True) + self.eps) ** -0.5
        xhat, gx = centered * rstd, g * w
        dx = rstd * (gx - gx.mean(axis=self.axes, keepdims=True)
                     - xhat * (gx * xhat).mean(axis=self.axes, keepdims=True))
        return dx, unbroadcast(g * xhat, w.shape), unbroadcast(g, b.shape)

    def backward_arrays(self, g, out):
        x, w, b = self.inputs
        xhat, gx = self.xhat, g * w.data
        dx = self.rstd * (gx - gx.mean(axis=self.axes, keepdims=True)
                          - xhat * (gx * xhat).mean(axis=self.axes, keepdims=True))
        leading = tuple(range(g.ndim - w.ndim))
        dw = (g * xhat).sum(axis=leading) if w.requires_grad else None
        db = g.sum(axis=leading) if b.requires_grad else None
        return dx.astype(x.dtype, copy=False), dw, db


class LinearOp(Function):
    """out = x @ Wᵀ + b over the last axis of x;  dx = g @ W,  dW = gᵀ @ x,  db = sum of g
    (g, x flattened to rows)"""

    def forward(self, x, w, b):
        rows = x.reshape(int(np.prod(x.shape[:-1])), x.shape[-1])
        return kernels.linear(rows, w, b).reshape(x.shape[:-1] + (w.shape[0],))

    def backward(self, g, out):
        x, w, b = self.inputs
        g_rows, x_rows = g.reshape(-1, w.shape[0]), x.reshape(-1, x.shape[-1])
        return g @ w, g_rows.transpose(0, 1) @ x_rows, g_rows.sum(0)

    def backward_arrays(self, g, out):
        x, w, b = self.inputs
        g_rows = g.reshape(-1, w.shape[0])
        x_rows = x.data.reshape(-1, x.shape[-1])
        dx = kernels.matmul(g_rows, w.data).reshape(x.shape) if x.requires_grad else None
        dw = kernels.matmul(g_rows.T, x_rows) if w.requires_grad else None  # Tᵀ: a GEMM flag
        db = g_rows.sum(axis=0) if b.requires_grad else None
        return dx, dw, db
