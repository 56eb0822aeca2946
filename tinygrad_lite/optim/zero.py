"""ZeRO stage 1: each rank keeps the optimizer state of only 1/N of the parameters.

In plain data parallel every rank runs the same optimizer step on the same averaged gradient
and keeps a full copy of the optimizer state: for Adam two more arrays as large as the model,
identical on every rank. ZeRO-1 (DeepSpeed's "optimizer state partitioning") removes the copies.
The parameters, laid end to end in one flat array, are cut into N equal parts; rank r owns part
r. A training step is then::

    loss.backward()                       # every rank: gradient of its own samples
    optimizer.reduce_gradients(n)         # reduce-scatter: rank r receives the averaged
                                          #   gradient of part r only
    optimizer.step()                      # rank r updates part r with the wrapped optimizer,
                                          #   then all-gather: every rank gets every part

A reduce-scatter plus an all-gather move the same bytes as the all-reduce of plain data
parallel, so the saving in memory costs no extra communication. The wrapped optimizer (AdamW,
SGD, ...) runs unchanged on this rank's part, seen as one or a few flat parameters: the
update is elementwise, so each element gets exactly the arithmetic it would get in a plain
optimizer, and the parameters stay bit-identical to plain data parallel.

Checkpoints are in the plain optimizer's format: ``consolidate_state_dict()`` gathers the parts
on one rank, whose ``state_dict()`` then loads into the wrapped optimizer class in a single
process -- or into a ZeRO optimizer over any number of ranks, which keeps its own part.
"""

from __future__ import annotations

import math

import numpy as np

from .. import distributed
from ..autograd import no_grad
from ..nn.parallel import sample_weight_and_grad_presence
from ..tensor import Tensor, from_numpy
from .optimizer import Optimizer, check_number


class _Piece:
    """The part of one parameter group that falls in this rank's part of the flat array:
    elements ``[start, stop)`` of the flat array, updated as one flat parameter."""

    def __init__(self, group_index: int, start: int, stop: int, view: np.ndarray):
        self.group_index, self.start, self.stop = group_index, start, stop
        self.tensor = from_numpy(view)  # shares memory with this rank's part


class ZeroRedundancyOptimizer:
    """Wrap ``optimizer_class`` (e.g. ``AdamW``) so that each rank keeps the state of 1/N of
    ``params`` (``torch.distributed.optim.ZeroRedundancyOptimizer``; the sharding is DeepSpeed's
    ZeRO stage 1). ``defaults`` are the wrapped optimizer's options (``lr=...``); ``params`` may
    be parameter groups. Call ``distributed.init()`` first; every rank builds it with the same
    parameters in the same order.

    Gradients, either way:
    - ``reduce_gradients(num_samples)`` after ``backward()`` (instead of DDP's
      ``sync_gradients``): a reduce-scatter, so each rank receives only its part of the averaged
      gradient. ``p.grad`` is then set to None on every parameter: clip with this class's
      ``clip_grad_norm_``, which sees the parts of all ranks.
    - Or, as in PyTorch, average the gradients into ``p.grad`` yourself (DDP's
      ``sync_gradients``) and call ``step()`` directly: it reads its part from ``p.grad``.

    ``step()`` updates this rank's part and all-gathers the parameters, so every rank ends the
    step with the same full model. Every call except ``state_dict`` is a collective: every rank
    makes it, in the same order. All parameters must have one dtype, and each must get a
    gradient on some rank at every step (a frozen parameter: ``requires_grad=False`` and leave
    it out of ``params``).
    """

    def __init__(self, params, optimizer_class: type, **defaults):
        if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, Optimizer)):
            raise TypeError(f"ZeroRedundancyOptimizer: optimizer_class must be an Optimizer "
                            f"subclass such as tg.optim.AdamW, got {optimizer_class!r}")
        world_size = distributed.get_world_size()  # a clear error before init()
        rank = distributed.get_rank()
        # The whole optimizer, never stepped: it checks the options, holds the user's param
        # groups (schedulers change their "lr") and reads/writes the plain state-dict format.
        self._whole = optimizer_class(params, **defaults)
        self.optimizer_class = optimizer_class
        self._params = [p for group in self.param_groups for p in group["params"]]
        dtypes = sorted({str(p.dtype) for p in self._params})
        if len(dtypes) > 1:
            raise TypeError(f"ZeroRedundancyOptimizer: all parameters must have one dtype (they "
                            f"are laid end to end in one array), got {', '.join(dtypes)}")
        self.dtype = self._params[0].dtype
        sizes = [p.data.size for p in self._params]
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)  # flat layout
        total = int(self._offsets[-1])
        self.part_size = math.ceil(total / world_size)  # the last part is padded with zeros
        self._lo = min(rank * self.part_size, total)
        self._hi = min(self._lo + self.part_size, total)
        # One flat array of world_size parts: it sends the gradients to the reduce-scatter,
        # then receives the parameters of the all-gather. This rank's parameters live in its
        # own part of it (the all-gather then runs in place); they are copied in from the
        # model at every step, so it does not matter that the gradients pass through first.
        world = np.zeros(world_size * self.part_size, dtype=self.dtype)
        self._whole_buffer = world
        self._param_part = world[rank * self.part_size:(rank + 1) * self.part_size]
        self._grad_part = np.zeros(self.part_size, dtype=self.dtype)  # this rank's gradient
        self._grads_reduced = False
        self._consolidated = None  # the plain state dict, on the rank that consolidated
        self._pieces = self._cut_pieces()
        self.optim = self._local_optimizer(optimizer_class, defaults)

    # -- layout ------------------------------------------------------------------------------

    def _cut_pieces(self) -> list:
        """One piece per parameter group that overlaps this rank's part of the flat array."""
        pieces, start = [], 0
        for g, group in enumerate(self.param_groups):
            stop = start + sum(p.data.size for p in group["params"])
            lo, hi = max(start, self._lo), min(stop, self._hi)
            if lo < hi:
                pieces.append(_Piece(g, lo, hi, self._param_part[lo - self._lo:hi - self._lo]))
            start = stop
        return pieces

    def _local_optimizer(self, optimizer_class: type, defaults: dict):
        """The wrapped optimizer over this rank's pieces, with their groups' options (None on
        a rank whose part is only padding: more ranks than parameter elements)."""
        if not self._pieces:
            return None
        groups = []
        for piece in self._pieces:
            options = {k: v for k, v in self.param_groups[piece.group_index].items()
                       if k != "params"}
            groups.append({**options, "params": [piece.tensor]})
        return optimizer_class(groups, **defaults)

    def _segments(self):
        """(parameter, its flat range [start, stop)) for every parameter, in layout order."""
        for i, p in enumerate(self._params):
            yield p, int(self._offsets[i]), int(self._offsets[i + 1])

    def _copy_part_from(self, arrays, out: np.ndarray | None = None) -> np.ndarray:
        """This rank's part of the flat concatenation of ``arrays`` (one per parameter, None
        for zeros), written into ``out`` (a new array of ``part_size`` elements by default)."""
        part = np.zeros(self.part_size, dtype=self.dtype) if out is None else out
        if out is not None:
            part[...] = 0
        for (p, start, stop), array in zip(self._segments(), arrays):
            lo, hi = max(start, self._lo), min(stop, self._hi)
            if lo < hi and array is not None:
                part[lo - self._lo:hi - self._lo] = array.reshape(-1)[lo - start:hi - start]
        return part

    # -- the options the user sees -----------------------------------------------------------

    @property
    def param_groups(self) -> list:
        """The parameter groups, with the user's parameters (a scheduler may set "lr")."""
        return self._whole.param_groups

    @property
    def defaults(self) -> dict:
        return self._whole.defaults

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (``Optimizer.zero_grad``), and any reduced part of them."""
        self._whole.zero_grad(set_to_none)
        self._grads_reduced = False

    # -- one training step -------------------------------------------------------------------

    def reduce_gradients(self, num_samples: int | None = None) -> None:
        """Average the ranks' gradients, weighted by their sample counts as DDP's
        ``sync_gradients`` does, with a reduce-scatter: this rank receives only its part, and
        every ``p.grad`` is set to None. Call it after ``backward()``, before ``step()``."""
        weight, has_grad = sample_weight_and_grad_presence("reduce_gradients", self._params,
                                                           num_samples)
        self._check_all_have_grads(has_grad, "reduce_gradients")
        send = self._whole_buffer
        scale = self.dtype.type(weight)
        for p, start, stop in self._segments():
            if p.grad is None:
                send[start:stop] = 0  # this rank saw no use of p: it adds nothing
            else:
                np.multiply(p.grad.data.reshape(-1), scale, out=send[start:stop],
                            casting="same_kind")
            p.grad = None
        send[int(self._offsets[-1]):] = 0  # the padding
        distributed.reduce_scatter_tensor(self._grad_part, send)
        self._grads_reduced = True

    def _check_all_have_grads(self, has_grad: list, function: str) -> None:
        missing = [i for i, flag in enumerate(has_grad) if not flag]
        if missing and len(missing) < len(has_grad):
            p = self._params[missing[0]]
            raise RuntimeError(f"ZeroRedundancyOptimizer.{function}: parameter {missing[0]} "
                               f"(shape {p.shape}) has no gradient on any rank. ZeRO updates "
                               f"flat parts of all parameters at once and cannot skip one; "
                               f"leave parameters you do not train out of params")

    def clip_grad_norm_(self, max_norm: float, norm_type: float = 2.0) -> float:
        """``nn.utils.clip_grad_norm_`` for gradients held in parts (after
        ``reduce_gradients``): the norm over all ranks' parts (one all-reduce of a number),
        then every part scaled by ``max_norm / (total + 1e-6)`` when that is < 1. Returns the
        total norm. Each rank sums its own part, so the norm may differ from an unsharded run's
        in the last bits (another order of additions)."""
        if not self._grads_reduced:
            raise RuntimeError("ZeroRedundancyOptimizer.clip_grad_norm_: call "
                               "reduce_gradients() first (the gradients are clipped in parts)")
        max_norm = check_number("clip_grad_norm_", "max_norm", max_norm)
        norm_type = float(norm_type)
        part = self._grad_part.astype(np.float64)
        if norm_type == math.inf:
            local = np.array([np.abs(part).max(initial=0.0)])
            total = float(distributed.all_reduce(local, op="max")[0])
        elif norm_type > 0:
            local = np.array([np.sum(np.abs(part) ** norm_type)])
            total = float(distributed.all_reduce(local)[0]) ** (1.0 / norm_type)
        else:
            raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or inf, got {norm_type}")
        scale = max_norm / (total + 1e-6)
        if scale < 1.0:
            self._grad_part *= self.dtype.type(scale)
        return total

    @no_grad()
    def step(self) -> None:
        """Update this rank's part with the wrapped optimizer, then all-gather the parts so
        that every rank holds all the updated parameters."""
        if not self._grads_reduced:  # PyTorch's way: p.grad already holds the average
            has_grad = [p.grad is not None for p in self._params]
            if not any(has_grad):
                return
            self._check_all_have_grads(has_grad, "step")
            self._copy_part_from([None if p.grad is None else p.grad.data
                                  for p in self._params], out=self._grad_part)
        # The parameters may have changed since the last step (loaded weights): start from them.
        self._copy_part_from([p.data for p in self._params], out=self._param_part)
        if self.optim is not None:
            for piece, group in zip(self._pieces, self.optim.param_groups):
                options = self.param_groups[piece.group_index]
                group.update({k: v for k, v in options.items() if k != "params"})
                piece.tensor.grad = Tensor._make(
                    self._grad_part[piece.start - self._lo:piece.stop - self._lo])
            self.optim.step()
            for piece in self._pieces:
                piece.tensor.grad = None
        gathered = self._whole_buffer
        distributed.all_gather_into_tensor(gathered, self._param_part)
        for p, start, stop in self._segments():
            p.data[...] = gathered[start:stop].reshape(p.shape)
            p._bump_version()
        self._grads_reduced = False
        self._consolidated = None

    # -- checkpoints: the plain optimizer's format ----------------------------------------

    def consolidate_state_dict(self, to: int = 0) -> None:
        """Gather the parts of the optimizer state on rank ``to``, whose ``state_dict()`` then
        returns it whole. A collective: every rank calls it."""
        world_size = distributed.get_world_size()
        if not (isinstance(to, int) and 0 <= to < world_size):
            raise ValueError(f"consolidate_state_dict: to must be a rank in 0..{world_size - 1}, "
                             f"got {to!r}")
        keys, scalars = self._state_layout()
        whole_state = {i: dict(scalars) for i in range(len(self._params))} if keys else {}
        for key in keys:
            part = np.zeros(self.part_size, dtype=self.dtype)
            for piece, tensor_state in self._piece_states():
                part[piece.start - self._lo:piece.stop - self._lo] = tensor_state[key]
            gathered = self._whole_buffer
            distributed.all_gather_into_tensor(gathered, part)
            if distributed.get_rank() == to:
                for i, (p, start, stop) in enumerate(self._segments()):
                    whole_state[i][key] = gathered[start:stop].reshape(p.shape).copy()
        if distributed.get_rank() == to:
            saved = self._whole.state_dict()  # the groups, with their current options
            saved["state"] = whole_state
            self._consolidated = saved
        else:
            self._consolidated = None

    def _piece_states(self):
        for piece in self._pieces:
            state = self.optim.state.get(piece.tensor) if self.optim is not None else None
            if state:
                yield piece, state

    def _state_layout(self) -> tuple:
        """The names of the state's arrays and its other entries (e.g. Adam's step count),
        agreed by all ranks: a rank with only padding has no state, the others the same."""
        arrays, scalars = set(), {}
        for _, state in self._piece_states():
            for key, value in state.items():
                if isinstance(value, np.ndarray):
                    arrays.add(key)
                else:
                    scalars[key] = value
        # Every rank learns the layout of rank 0 ... N-1's states: a small all-reduce.
        names = sorted(self._whole.state_keys)
        flags = np.array([name in arrays for name in names], dtype=np.int64)
        distributed.all_reduce(flags, op="max")
        step = np.array([scalars.get("step", -1)], dtype=np.float64)
        distributed.all_reduce(step, op="max")
        keys = [name for name, flag in zip(names, flags) if flag]
        if step[0] >= 0:
            scalars["step"] = int(step[0])
        return keys, scalars

    def state_dict(self) -> dict:
        """The whole optimizer state in the wrapped optimizer's format, on the rank that ran
        ``consolidate_state_dict`` since the last step (PyTorch's rule)."""
        if self._consolidated is None:
            raise RuntimeError("ZeroRedundancyOptimizer.state_dict: the optimizer state has not "
                               "been consolidated on this rank; call "
                               "consolidate_state_dict(to=this rank) on every rank first")
        return self._consolidated

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a whole state dict (from ``state_dict()``, or from the wrapped optimizer class
        in a single process); this rank keeps its part. Every rank calls it with the same dict."""
        self._whole.load_state_dict(state_dict)  # checks groups, shapes and buffer names
        whole_state = self._whole.state
        self._whole.state = {}  # only this rank's part is kept
        if self.optim is None:
            return
        states = [whole_state.get(p) for p in self._params]
        if not any(states):
            self.optim.state = {}
            return
        if not all(states):
            raise ValueError("ZeroRedundancyOptimizer.load_state_dict: some parameters have "
                             "optimizer state and others none; ZeRO keeps state for all "
                             "parameters at once")
        local_state = {}
        for piece in self._pieces:
            restored = {}
            for key, value in states[0].items():
                if isinstance(value, np.ndarray):
                    part = self._copy_part_from([s[key] for s in states])
                    restored[key] = part[piece.start - self._lo:piece.stop - self._lo].copy()
                else:
                    restored[key] = value
            local_state[piece.tensor] = restored
        self.optim.state = local_state
        for piece, group in zip(self._pieces, self.optim.param_groups):
            options = self.param_groups[piece.group_index]
            group.update({k: v for k, v in options.items() if k != "params"})
        self._consolidated = None

    def __repr__(self) -> str:
        return (f"ZeroRedundancyOptimizer({self.optimizer_class.__name__}, rank part "
                f"[{self._lo}, {self._hi}) of {int(self._offsets[-1])} elements)\n"
                f"{self._whole!r}")
