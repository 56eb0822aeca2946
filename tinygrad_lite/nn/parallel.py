"""Data-parallel training (``torch.nn.parallel.DistributedDataParallel``).

Every rank holds a full copy of the model, runs forward and backward on its own part of the
batch, and then all ranks average their gradients, so every optimizer step sees the gradient of
the whole batch and the copies stay identical. A training step::

    dist.init()
    model = DistributedDataParallel(MyModel())        # rank 0's weights copied to all ranks
    loss = loss_fn(model(x_local), y_local)           # x_local: this rank's samples
    loss.backward()
    model.sync_gradients(num_samples=len(x_local))    # the one extra line
    optimizer.step()

PyTorch averages inside ``backward()`` with autograd hooks, so that communication overlaps the
rest of the backward pass. Here ``backward()`` knows nothing of DDP and the average is one
explicit call after it: simpler to read, and nothing can overlap on a NumPy engine anyway.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import distributed
from ..tensor import Tensor
from .module import Module


class _Bucket:
    """Parameters of one dtype packed one after another in one flat buffer: one all-reduce
    call moves all their gradients."""

    def __init__(self, params: list, dtype: np.dtype):
        self.params = params
        sizes = [p.data.size for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.buffer = np.empty(int(self.offsets[-1]), dtype=dtype)

    def view(self, i: int) -> np.ndarray:
        """The part of the buffer that holds parameter ``i``'s gradient, shaped like it."""
        start, stop = self.offsets[i], self.offsets[i + 1]
        return self.buffer[start:stop].reshape(self.params[i].shape)


def _make_buckets(params: list, cap_bytes: float) -> list:
    """Split ``params`` (in their fixed order) into consecutive runs of one dtype of at most
    ``cap_bytes`` each; a parameter larger than the cap gets a bucket of its own."""
    buckets, run, run_bytes = [], [], 0
    for p in params:
        fits = run and p.dtype == run[0].dtype and run_bytes + p.data.nbytes <= cap_bytes
        if run and not fits:
            buckets.append(_Bucket(run, run[0].dtype))
            run, run_bytes = [], 0
        run.append(p)
        run_bytes += p.data.nbytes
    if run:
        buckets.append(_Bucket(run, run[0].dtype))
    return buckets


def check_num_samples(function: str, num_samples) -> None:
    if num_samples is not None and (not isinstance(num_samples, numbers.Integral) or
                                    isinstance(num_samples, bool) or num_samples < 0):
        raise ValueError(f"{function}: num_samples must be an int >= 0 (this rank's sample "
                         f"count) or None, got {num_samples!r}")


def sample_weight_and_grad_presence(function: str, params: list, num_samples) -> tuple:
    """This rank's weight in the average of the ranks' gradients, ``num_samples / (sum over
    ranks of num_samples)`` (``None`` counts as 1: equal weights), and for each parameter
    whether some rank has a grad for it: one small all-reduce (a collective) for both."""
    check_num_samples(function, num_samples)
    local_count = 1 if num_samples is None else int(num_samples)
    header = np.zeros(1 + len(params), dtype=np.float64)
    header[0] = local_count
    header[1:] = [p.grad is not None for p in params]
    distributed.all_reduce(header)
    if header[0] <= 0:
        raise ValueError(f"{function}: every rank passed num_samples=0; at least one rank "
                         f"must hold samples")
    return local_count / header[0], [flag > 0 for flag in header[1:]]


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training over the ranks of ``tinygrad_lite.
    distributed`` (call ``distributed.init()`` first).

    On construction rank 0's parameters and buffers are copied to every rank. Calling the
    wrapper runs ``module``; its parameters and ``state_dict`` are the module's, with keys
    prefixed by ``module.`` as in PyTorch (save ``ddp.module.state_dict()`` for a checkpoint
    that loads into the bare model). After each ``backward()`` call ``sync_gradients``.

    ``bucket_cap_mb``: gradients are averaged in buckets of about this many megabytes (one
    all-reduce per bucket rather than one per parameter: fewer, larger messages are faster).
    """

    def __init__(self, module: Module, bucket_cap_mb: float = 25):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be an nn.Module, got "
                            f"{type(module).__name__}")
        if (not isinstance(bucket_cap_mb, numbers.Real) or isinstance(bucket_cap_mb, bool)
                or not bucket_cap_mb > 0):
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be a number > 0, "
                             f"got {bucket_cap_mb!r}")
        world_size = distributed.get_world_size()  # raises a clear error before init()
        self.module = module
        distributed.broadcast_parameters(module)
        self._params = [p for p in module.parameters() if p.requires_grad]
        self._index = {id(p): i for i, p in enumerate(self._params)}
        self._buckets = (_make_buckets(self._params, bucket_cap_mb * 2 ** 20)
                         if world_size > 1 else [])

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def sync_gradients(self, num_samples: int | None = None) -> None:
        """Replace every parameter's ``.grad`` with the average over all ranks, weighted by
        the ranks' sample counts.

        Each rank's gradient is that of the *mean* loss over its ``num_samples`` samples; the
        result, ``sum_r g_r * n_r / sum_r n_r``, is then the gradient of the mean loss over the
        whole global batch, also when ranks hold different numbers of samples. ``None`` weights
        every rank equally. A parameter that has no grad on some rank counts as zeros there; one
        that has a grad on no rank keeps ``grad = None`` on all. Every rank must call this
        (it is a collective): the same number of times, in the same order.
        """
        if distributed.get_world_size() == 1:
            check_num_samples("sync_gradients", num_samples)
            return  # the local gradient is already the global one
        weight, self._has_grad = sample_weight_and_grad_presence("sync_gradients",
                                                                 self._params, num_samples)
        for bucket in self._buckets:
            self._reduce_bucket(bucket, weight)

    def _reduce_bucket(self, bucket: _Bucket, weight: float) -> None:
        """Pack the weighted gradients into the bucket, sum them over the ranks, unpack."""
        scale = bucket.buffer.dtype.type(weight)
        for i, p in enumerate(bucket.params):
            if p.grad is None:
                bucket.view(i)[...] = 0
            else:
                np.multiply(p.grad.data, scale, out=bucket.view(i), casting="same_kind")
        distributed.all_reduce(bucket.buffer)
        for i, p in enumerate(bucket.params):
            if self._has_grad[self._index[id(p)]]:
                p.grad = Tensor._make(bucket.view(i).copy())
