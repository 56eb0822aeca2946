"""Neural-network functions (the ``torch.nn.functional`` of this package).

Thin wrappers: each checks its arguments and either applies one of the fused ops in
``ops/nn.py`` (softmax, log-softmax, cross-entropy, layer norm, linear) or composes Tensor
operations that already have gradients.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import autograd
from ..checks import check_flag, check_float, check_number, check_shape, check_tensor
from ..ops.nn import CrossEntropy, LayerNormOp, LinearOp
# softmax and log_softmax (their checks and apply) sit beside their ops, because Tensor.softmax
# and Tensor.log_softmax call them too; this is their torch.nn.functional name.
from ..ops.nn import log_softmax, softmax  # noqa: F401
from ..tensor import Tensor, get_rng


def _targets(op: str, input: Tensor, target, weight, reduction: str) -> np.ndarray:
    """The checks cross_entropy and nll_loss share: float input, integer targets, no class
    weights (not implemented), a known reduction. Returns the targets as an array."""
    check_float(op, "input", input)
    if weight is not None:
        raise NotImplementedError(f"{op}: class weights (weight=) are not supported; the third "
                                  f"positional argument is weight, as in PyTorch, so pass "
                                  f"ignore_index= and reduction= by keyword")
    target = target.data if isinstance(target, Tensor) else np.asarray(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: targets must be integer class indices, got dtype {target.dtype}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return target


def _loss_input(op: str, input, ignore_index) -> Tensor:
    """The checks of cross_entropy's and nll_loss's ``input`` and ``ignore_index``: a Tensor of
    at least one dimension (the classes), an integer ignore_index."""
    check_tensor(op, "input", input)
    check_number(op, "ignore_index", ignore_index, -np.inf, integer=True)
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have a class dimension: (C,), (N, C) or "
                         f"(N, C, d1, ...), got a 0-d tensor")
    return input


def _loss_over_nothing(input: Tensor, reduction: str) -> Tensor:
    """The loss of an (N, C) input with no elements: rows of 0 ('none'), their sum 0, their mean
    0/0 = NaN, as in torch (computed without NumPy's warnings about empty means). Built on
    input.sum() so that backward works and gives the (empty) input a gradient."""
    zero = input.sum() * 0.0  # () and in the graph
    if reduction == "none":
        return zero + Tensor._make(np.zeros(input.shape[:1], dtype=input.dtype))
    return zero if reduction == "sum" else zero + float("nan")


def _check_target_range(op: str, target: np.ndarray, classes: int, ignore_index: int) -> None:
    """A target outside 0..classes-1 (other than ignore_index) is an IndexError, as in torch;
    NumPy would silently read the last class for -1."""
    bad = (target != ignore_index) & ((target < 0) | (target >= classes))
    if bad.any():
        raise IndexError(f"{op}: Target {int(target[bad][0])} is out of bounds for {classes} "
                         f"classes (valid: 0..{classes - 1}, or ignore_index={ignore_index})")


def _flatten_classes(op: str, input: Tensor, target: np.ndarray):
    """(N, C, d1, ...) logits and (N, d1, ...) targets -> (N*d1*..., C) and (N*d1*...,)."""
    if target.shape != input.shape[:1] + input.shape[2:]:
        raise ValueError(f"{op}: input of shape {input.shape} needs targets of shape "
                         f"{input.shape[:1] + input.shape[2:]}, got {target.shape}")
    classes = input.shape[1]
    rows = int(np.prod(target.shape))  # (not -1: with 0 classes that would be ambiguous)
    flat = input.permute(0, *range(2, input.ndim), 1).reshape(rows, classes)
    return flat, target.reshape(-1)


def cross_entropy(input: Tensor, target, weight=None, *, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between logits ``input`` (N, C) -- or (C,), or (N, C, d1, ...) -- and integer
    class targets (N,) -- or (), or (N, d1, ...); as ``torch.nn.functional.cross_entropy``."""
    _loss_input("cross_entropy", input, ignore_index)
    target = _targets("cross_entropy", input, target, weight, reduction)
    label_smoothing = check_number("cross_entropy", "label_smoothing", label_smoothing, 0.0, 1.0)
    if input.dtype == np.float16:  # the fused kernels run in float32/float64 only
        raise TypeError("cross_entropy: float16 logits are not supported (the C kernels run in "
                        "float32 or float64); convert them with .float()")
    options = dict(ignore_index=ignore_index, reduction=reduction,
                   label_smoothing=label_smoothing)
    if input.ndim == 1:  # one sample
        out = cross_entropy(input.reshape(1, -1), target.reshape(1), **options)
        return out.reshape(()) if reduction == "none" else out
    if input.ndim > 2:  # (N, C, d1, ...): move the class axis last and flatten the rest
        flat, flat_target = _flatten_classes("cross_entropy", input, target)
        out = cross_entropy(flat, flat_target, **options)
        return out.reshape(target.shape) if reduction == "none" else out
    n, classes = input.shape
    if target.shape != (n,):
        raise ValueError(f"cross_entropy: logits of shape {input.shape} need targets of shape "
                         f"({n},), got {target.shape}")
    _check_target_range("cross_entropy", target, classes, ignore_index)
    if input.numel() == 0:  # no rows, or no classes (then every target is ignored)
        return _loss_over_nothing(input, reduction)
    needs_grad = autograd.is_grad_enabled() and input.requires_grad
    return CrossEntropy.apply(input, targets=target.astype(np.int64, copy=False),
                              ignore_index=ignore_index, reduction=reduction,
                              label_smoothing=float(label_smoothing), needs_grad=needs_grad)


def nll_loss(input: Tensor, target, weight=None, *, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood: -input[i, target[i]] for log-probabilities ``input`` (N, C) -- or
    (C,), or (N, C, d1, ...) -- and integer targets (N,) (or (), or (N, d1, ...)), as torch.
    Targets equal to ``ignore_index`` contribute 0, and 'mean' divides by the number of the
    others (NaN if there are none, as in torch)."""
    _loss_input("nll_loss", input, ignore_index)
    target = _targets("nll_loss", input, target, weight, reduction)
    options = dict(ignore_index=ignore_index, reduction=reduction)
    if input.ndim == 1:  # one sample
        out = nll_loss(input.reshape(1, -1), target.reshape(1), **options)
        return out.reshape(()) if reduction == "none" else out
    if input.ndim > 2:
        flat, flat_target = _flatten_classes("nll_loss", input, target)
        out = nll_loss(flat, flat_target, **options)
        return out.reshape(target.shape) if reduction == "none" else out
    if input.ndim != 2 or target.shape != input.shape[:1]:
        raise ValueError(f"nll_loss: input of shape {input.shape} needs targets of shape "
                         f"{input.shape[:1]}, got {target.shape}")
    n, classes = input.shape
    _check_target_range("nll_loss", target, classes, ignore_index)
    keep = target != ignore_index
    if classes == 0:  # then every target is ignore_index (checked above): nothing to pick
        picked = Tensor._make(np.zeros(n, dtype=input.dtype))
    else:  # (N,): an ignored row reads class 0 ...
        picked = input[np.arange(n), np.where(keep, target, 0)]
    losses = -picked * Tensor._make(keep.astype(input.dtype))  # ... and contributes 0
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    count = int(keep.sum())
    return losses.sum() * (1.0 / count if count else float("nan"))


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error: mean((input - target)^2)."""
    check_tensor("mse_loss", "input", input)
    if not isinstance(target, Tensor):
        array_ok = isinstance(target, np.ndarray) and target.dtype.kind in "fiub"
        if not (array_ok or isinstance(target, (numbers.Real, np.bool_))):
            raise TypeError(f"mse_loss: argument 'target' must be a Tensor (or a number), not "
                            f"{type(target).__name__}")
        target = input._operand(target)
    if np.bool_ in (input.dtype, target.dtype):  # as torch: a bool difference means nothing
        raise TypeError(f"mse_loss: input and target must be number tensors, got dtypes "
                        f"{input.dtype} and {target.dtype}")
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input shape {input.shape} and target shape {target.shape} "
                         f"differ (broadcasting them is almost always a bug)")
    diff = input - target
    squared = diff * diff
    if reduction == "mean":
        return squared.mean()
    if reduction == "sum":
        return squared.sum()
    if reduction == "none":
        return squared
    raise ValueError(f"mse_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout);
    the identity when not training."""
    check_tensor("dropout", "input", x)
    p = check_number("dropout", "p", p, 0.0, 1.0)
    if not check_flag("dropout", "training", training) or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = get_rng().random(x.shape) >= p
    return x * Tensor._make((keep / (1.0 - p)).astype(x.dtype))


def layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) over the last len(normalized_shape) axes, then * weight + bias
    (biased variance, as in PyTorch). One Function (LayerNormOp) instead of about nine ops: a
    Transformer calls it twice per block."""
    check_tensor("layer_norm", "input", x)
    check_float("layer_norm", "input", x)
    normalized_shape = check_shape("layer_norm", (normalized_shape,))
    if not normalized_shape:  # as torch: there must be something to normalise over
        raise ValueError("layer_norm: normalized_shape must have at least one dimension, got ()")
    eps = check_number("layer_norm", "eps", eps)
    if len(normalized_shape) > x.ndim or \
            x.shape[x.ndim - len(normalized_shape):] != normalized_shape:
        raise ValueError(f"layer_norm: normalized_shape {normalized_shape} does not match the "
                         f"last dimensions of the input shape {x.shape}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and check_tensor("layer_norm", name, p).shape != normalized_shape:
            raise ValueError(f"layer_norm: {name} has shape {p.shape}, expected "
                             f"{normalized_shape}")
    if weight is None:  # constants: no gradient is asked of them
        weight = Tensor._make(np.ones(normalized_shape, dtype=x.dtype))
    if bias is None:
        bias = Tensor._make(np.zeros(normalized_shape, dtype=x.dtype))
    if x.numel() == 0:  # nothing to normalise: an empty result (NumPy's mean over no elements
        return (x - x) * weight + bias  # would warn); weight and bias get zero gradients
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    return LayerNormOp.apply(x, weight, bias, axes=axes, eps=float(eps))


def embedding(input, weight: Tensor) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) picked by integer ids of any shape."""
    check_tensor("embedding", "weight", weight)
    ids = input.data if isinstance(input, Tensor) else np.asarray(input)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embedding: ids must be integers, got dtype {ids.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, dim), got {weight.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= weight.shape[0]):
        bad = ids[(ids < 0) | (ids >= weight.shape[0])][0]
        raise IndexError(f"embedding: id {int(bad)} is out of range for {weight.shape[0]} "
                         f"embeddings")
    return weight[ids]


def relu(x: Tensor) -> Tensor:
    return check_tensor("relu", "input", x).relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return check_tensor("leaky_relu", "input", x).leaky_relu(negative_slope)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    return check_tensor("gelu", "input", x).gelu(approximate)


def sigmoid(x: Tensor) -> Tensor:
    return check_tensor("sigmoid", "input", x).sigmoid()


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return check_tensor("softplus", "input", x).softplus(beta, threshold)


def relu6(x: Tensor) -> Tensor:
    return check_tensor("relu6", "input", x).relu6()


def hardswish(x: Tensor) -> Tensor:
    return check_tensor("hardswish", "input", x).hardswish()


def silu(x: Tensor) -> Tensor:
    return check_tensor("silu", "input", x).silu()


def mish(x: Tensor) -> Tensor:
    return check_tensor("mish", "input", x).mish()


def tanh(x: Tensor) -> Tensor:
    return check_tensor("tanh", "input", x).tanh()


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weightᵀ + bias, with weight of shape (out_features, in_features) as in PyTorch.
    With a bias and float inputs of one dtype it is one Function (LinearOp): the bias is added
    inside the GEMM instead of in a separate pass."""
    _check_linear(x, weight, bias)
    if (bias is not None and weight.ndim == 2 and bias.ndim == 1 and x.ndim >= 1
            and x.dtype.kind == "f" and x.dtype == weight.dtype == bias.dtype
            and x.shape[-1] == weight.shape[1] and bias.shape[0] == weight.shape[0]
            and x.shape[-1] > 0):
        return LinearOp.apply(x, weight, bias)
    out = x @ weight.transpose(-1, -2) if weight.ndim > 1 else x @ weight
    return out + bias if bias is not None else out


def _check_linear(x, weight, bias) -> None:
    """linear's arguments: float32/float64 tensors (the GEMM kernels' dtypes), weight
    (out_features, in_features) or (in_features,) matching x's last dimension, and a bias that
    broadcasts to the output."""
    for name, t in (("input", x), ("weight", weight)):
        if check_tensor("linear", name, t).dtype not in (np.float32, np.float64):
            raise TypeError(f"linear: {name} must be float32 or float64 (the GEMM kernels' "
                            f"dtypes), got {t.dtype}; convert it with .float()")
    if x.ndim == 0 or weight.ndim not in (1, 2) or x.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear: input of shape {x.shape} does not fit weight of shape "
                         f"{weight.shape}: weight must be (out_features, in_features) or "
                         f"(in_features,), with in_features = the input's last dimension")
    if bias is not None:
        out_shape = x.shape[:-1] + weight.shape[:-1]
        try:
            fits = np.broadcast_shapes(out_shape, check_tensor("linear", "bias", bias).shape) \
                == out_shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"linear: bias of shape {bias.shape} does not broadcast to the "
                             f"output shape {out_shape}")
