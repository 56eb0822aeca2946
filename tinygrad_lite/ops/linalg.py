"""Matrix multiplication, with NumPy's rules for 1-D operands and batch broadcasting."""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import Function, unbroadcast
from ..tensor import Tensor


class MatMul(Function):
    """out = a @ b (both at least 2-D, batch dims broadcast);  da = g @ bᵀ,  db = aᵀ @ g"""

    def forward(self, a, b):
        if a.dtype.kind == "f":
            return kernels.matmul(a, b)  # the C GEMM (or the NumPy reference when chosen)
        return np.matmul(a, b)  # integer matmul: no kernel, NumPy is the implementation

    def backward(self, g, out):
        a, b = self.inputs
        da = unbroadcast(g @ b.transpose(-1, -2), a.shape) if a.requires_grad else None
        db = unbroadcast(a.transpose(-1, -2) @ g, b.shape) if b.requires_grad else None
        return da, db


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """a @ b. A 1-D operand is treated as a row (a) or column (b) vector and that dimension is
    dropped from the result; leading (batch) dimensions broadcast."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least one dimension, got shapes "
                         f"{a.shape} and {b.shape} (use * for scalars)")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not fit: the last "
                         f"dimension of the first ({a.shape[-1]}) must equal the "
                         f"{'second-to-last' if b.ndim > 1 else 'only'} dimension of the second "
                         f"({b.shape[-2 if b.ndim > 1 else 0]})")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of shapes {a.shape} and {b.shape} cannot be "
                         f"broadcast together") from None
    if a.dtype != b.dtype:
        common = np.promote_types(a.dtype, b.dtype)
        a, b = a.to(common), b.to(common)
    if a.ndim == 1 and b.ndim == 1:
        return MatMul.apply(a.reshape(1, a.shape[0]), b.reshape(b.shape[0], 1)).reshape(())
    if a.ndim == 1:
        out = MatMul.apply(a.reshape(1, a.shape[0]), b)
        return out.reshape(out.shape[:-2] + out.shape[-1:])
    if b.ndim == 1:
        return MatMul.apply(a, b.reshape(b.shape[0], 1)).reshape(a.shape[:-1])
    return MatMul.apply(a, b)
