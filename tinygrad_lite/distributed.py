"""Several processes training one model: the MPI world (``torch.distributed``'s names).

Launch the same script N times with ``mpirun -np N python script.py``; each process (a "rank")
calls ``init()`` and learns its rank and the world size from MPI. A plain ``python script.py``
is a world of size 1: every function here then works without MPI (mpi4py is imported only when
the process was started by a launcher).

Failure handling: in a world of more than one rank, ``init()`` installs a ``sys.excepthook``
that prints the traceback with the rank and aborts the whole MPI job. Without it, one rank's
exception would leave the others waiting forever in their next collective call.

Threads: unless ``TGL_NUM_THREADS`` is set, ``init()`` gives each rank's C kernels an equal share
of the machine's cores (cores / ranks on this machine, at least 1), so that N ranks do not run
N times as many threads as there are cores.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import numpy as np

# Environment variables that launchers set in every process they start: Open MPI's mpirun,
# MPICH/Hydra (and Intel MPI), PMIx-based launchers (Open MPI 5, srun --mpi=pmix).
_LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK")

_REDUCE_OPS = ("sum", "prod", "min", "max")

_world = None  # the _World after init()


class _World:
    """The communicator (None in a world of size 1), this process's rank and the world size."""

    def __init__(self, comm, rank: int, size: int):
        self.comm, self.rank, self.size = comm, rank, size


def _launched_by_mpi() -> bool:
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(f"tinygrad_lite.distributed.init: this process was started by an MPI "
                          f"launcher but mpi4py cannot be imported ({e}); install it with "
                          f"`pip install \"tinygrad_lite[distributed]\"`") from None
    return MPI


def init() -> None:
    """Join the MPI world (``torch.distributed.init_process_group``). Calling it again does
    nothing. Without an MPI launcher this process is rank 0 of a world of size 1."""
    global _world
    if _world is not None:
        return
    if not _launched_by_mpi():
        _world = _World(None, 0, 1)
        return
    MPI = _import_mpi()
    comm = MPI.COMM_WORLD
    _world = _World(comm, comm.Get_rank(), comm.Get_size())
    if _world.size > 1:
        sys.excepthook = _abort_on_exception
        # A collective call, so every rank makes it, whatever its environment says.
        this_machine = comm.Split_type(MPI.COMM_TYPE_SHARED)
        local_ranks = this_machine.Get_size()
        this_machine.Free()
        if not os.environ.get("TGL_NUM_THREADS", "").strip():
            _share_the_cores(local_ranks)


def _share_the_cores(local_ranks: int) -> None:
    """Kernel threads per rank: the machine's cores / its ranks, and no more than the CPUs this
    process may run on (mpirun may have bound it to one core)."""
    from . import kernels
    share = (os.cpu_count() or 1) // local_ranks
    try:
        share = min(share, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity on this platform
        pass
    kernels.set_num_threads(max(1, share))


def _abort_on_exception(exc_type, exc, tb) -> None:
    """Print the traceback with this rank's number, then bring down every rank of the job."""
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.stderr.write(f"[rank {_world.rank}] uncaught exception, aborting the MPI job:\n{text}")
    sys.stderr.flush()
    _world.comm.Abort(1)


def _require_world(op: str) -> _World:
    if _world is None:
        raise RuntimeError(f"{op}: the distributed world is not initialized; call "
                           f"tinygrad_lite.distributed.init() first")
    return _world


def is_initialized() -> bool:
    """True once ``init()`` has run."""
    return _world is not None


def get_rank() -> int:
    """This process's number, 0 .. world size - 1."""
    return _require_world("get_rank").rank


def get_world_size() -> int:
    """How many processes run the job."""
    return _require_world("get_world_size").size


def is_main_process() -> bool:
    """True on rank 0: the one that prints, logs and writes checkpoints."""
    return _require_world("is_main_process").rank == 0


def barrier() -> None:
    """Wait until every rank has reached this call."""
    world = _require_world("barrier")
    if world.comm is not None:
        world.comm.Barrier()


def _checked_buffer(op: str, array) -> np.ndarray:
    """The NumPy array behind ``array`` (an ndarray or a Tensor), which MPI writes in place."""
    data = getattr(array, "data", None) if not isinstance(array, np.ndarray) else array
    if not isinstance(data, np.ndarray):
        raise TypeError(f"{op}: array must be a NumPy array or a Tensor, got "
                        f"{type(array).__name__}")
    if not (data.flags.c_contiguous and data.flags.writeable):
        raise ValueError(f"{op}: array must be C-contiguous and writeable (MPI reduces it in "
                         f"place); pass np.ascontiguousarray(array) and use the result")
    return data


def all_reduce(array, op: str = "sum"):
    """Combine ``array`` over all ranks, in place, so every rank holds the result
    (``torch.distributed.all_reduce``). ``op`` is "sum", "prod", "min" or "max". Returns
    ``array``. Every rank must call it with the same shape and dtype."""
    world = _require_world("all_reduce")
    _check_op("all_reduce", op)
    data = _checked_reducible("all_reduce", _checked_buffer("all_reduce", array))
    if world.comm is not None:
        world.comm.Allreduce(_import_mpi().IN_PLACE, data, op=_mpi_op(op))
        if hasattr(array, "_bump_version"):
            array._bump_version()
    return array


def _check_op(function: str, op: str) -> str:
    if op not in _REDUCE_OPS:
        raise ValueError(f"{function}: op must be one of {', '.join(_REDUCE_OPS)}, got {op!r}")
    return op


def _checked_reducible(function: str, data: np.ndarray) -> np.ndarray:
    if data.dtype == np.bool_:
        raise TypeError(f"{function}: MPI cannot sum, multiply or compare bool arrays; convert "
                        f"with array.astype(np.int64) first")
    return data


def _mpi_op(op: str):
    MPI = _import_mpi()
    return {"sum": MPI.SUM, "prod": MPI.PROD, "min": MPI.MIN, "max": MPI.MAX}[op]


def _checked_part_and_whole(op: str, part, whole, names: tuple, world: _World) -> tuple:
    """The arrays behind ``part`` (one rank's share) and ``whole`` (every rank's share one after
    another): one dtype, ``whole.size == world size * part.size``, no shared memory. ``names``
    are the two arguments' names, for the error messages."""
    part_name, whole_name = names
    part_data, whole_data = _checked_buffer(op, part), _checked_buffer(op, whole)
    if part_data.dtype != whole_data.dtype:
        raise TypeError(f"{op}: {part_name} and {whole_name} must have one dtype, got "
                        f"{part_data.dtype} and {whole_data.dtype}")
    if whole_data.size != world.size * part_data.size:
        raise ValueError(f"{op}: {whole_name} must hold world size ({world.size}) x "
                         f"{part_name}.size ({part_data.size}) = {world.size * part_data.size} "
                         f"elements, got {whole_data.size}")
    if np.may_share_memory(part_data, whole_data) and not _is_own_slot(part_data, whole_data,
                                                                         world):
        raise ValueError(f"{op}: {part_name} and {whole_name} share memory; give each its own "
                         f"array")
    return part_data, whole_data


def _is_own_slot(part: np.ndarray, whole: np.ndarray, world: _World) -> bool:
    """True if ``part`` is exactly this rank's slot of ``whole``: an all-gather in place."""
    slot_start = whole.__array_interface__["data"][0] + world.rank * part.nbytes
    return part.__array_interface__["data"][0] == slot_start


def reduce_scatter_tensor(output, input, op: str = "sum"):
    """Combine ``input`` over all ranks and give rank r only part r of the result, in
    ``output`` (``torch.distributed.reduce_scatter_tensor``): ``input`` holds world size parts of
    ``output.size`` elements one after another. Moves half the bytes of an all-reduce (which is a
    reduce-scatter followed by an all-gather). Returns ``output``."""
    world = _require_world("reduce_scatter_tensor")
    _check_op("reduce_scatter_tensor", op)
    out, inp = _checked_part_and_whole("reduce_scatter_tensor", output, input,
                                       ("output", "input"), world)
    _checked_reducible("reduce_scatter_tensor", inp)
    if world.comm is None:
        out.reshape(-1)[...] = inp.reshape(-1)
    else:
        world.comm.Reduce_scatter_block(inp, out, op=_mpi_op(op))
    if hasattr(output, "_bump_version"):
        output._bump_version()
    return output


def all_gather_into_tensor(output, input):
    """Every rank's ``input`` one after another (rank 0's first), in ``output`` on every rank
    (``torch.distributed.all_gather_into_tensor``). Returns ``output``. ``input`` may be this
    rank's own slot of ``output`` (``output[rank * n:(rank + 1) * n]``): the gather then runs in
    place, without a separate input array."""
    world = _require_world("all_gather_into_tensor")
    inp, out = _checked_part_and_whole("all_gather_into_tensor", input, output,
                                       ("input", "output"), world)
    in_place = np.may_share_memory(inp, out)
    if world.comm is None:
        if not in_place:
            out.reshape(-1)[...] = inp.reshape(-1)
    else:
        world.comm.Allgather(_import_mpi().IN_PLACE if in_place else inp, out)
    if hasattr(output, "_bump_version"):
        output._bump_version()
    return output


def broadcast(array, src: int = 0):
    """Overwrite ``array`` on every rank with rank ``src``'s values, in place
    (``torch.distributed.broadcast``). Returns ``array``."""
    world = _require_world("broadcast")
    if not (isinstance(src, int) and 0 <= src < world.size):
        raise ValueError(f"broadcast: src must be a rank in 0..{world.size - 1}, got {src!r}")
    data = _checked_buffer("broadcast", array)
    if world.comm is not None:
        world.comm.Bcast(data, root=src)
        if hasattr(array, "_bump_version"):
            array._bump_version()
    return array


def gather_object(obj, object_gather_list: list | None = None, dst: int = 0) -> None:
    """Collect one value from every rank into ``object_gather_list`` on rank ``dst``, in rank
    order (``torch.distributed.gather_object``). On ``dst`` the list must have one entry per
    rank (they are replaced); on the other ranks it must be None.

    Unlike PyTorch's, the values travel as JSON, never pickled: ``obj`` may hold dicts with
    string keys, lists, strings, integers of any size, floats, bools and None (a tuple arrives
    as a list) -- e.g. a generator's ``bit_generator.state``. A collective: every rank calls it."""
    world = _require_world("gather_object")
    if not (isinstance(dst, int) and not isinstance(dst, bool) and 0 <= dst < world.size):
        raise ValueError(f"gather_object: dst must be a rank in 0..{world.size - 1}, got {dst!r}")
    if world.rank == dst and not (isinstance(object_gather_list, list)
                                  and len(object_gather_list) == world.size):
        raise ValueError(f"gather_object: on rank dst={dst} object_gather_list must be a list "
                         f"of world size ({world.size}) entries, got {object_gather_list!r:.60}")
    if world.rank != dst and object_gather_list is not None:
        raise ValueError(f"gather_object: object_gather_list must be None on ranks other than "
                         f"dst={dst} (rank {world.rank} got {type(object_gather_list).__name__})")
    try:
        payload = np.frombuffer(json.dumps(obj).encode("utf-8"), dtype=np.uint8)
    except (TypeError, ValueError) as e:
        raise TypeError(f"gather_object: obj must be JSON-able (dicts with string keys, lists, "
                        f"strings, numbers, bools, None), got {type(obj).__name__}: {e}") from None
    if world.comm is None:
        object_gather_list[0] = json.loads(payload.tobytes())
        return
    # The sizes first, so that rank dst can make room for everything in one message.
    sizes = np.zeros(world.size, dtype=np.int64) if world.rank == dst else None
    world.comm.Gather(np.array([payload.size], dtype=np.int64), sizes, root=dst)
    if world.rank != dst:
        world.comm.Gatherv(payload, None, root=dst)
        return
    received = np.empty(int(sizes.sum()), dtype=np.uint8)
    world.comm.Gatherv(payload, [received, sizes.tolist()], root=dst)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    for r in range(world.size):
        object_gather_list[r] = json.loads(received[starts[r]:starts[r + 1]].tobytes())


def broadcast_parameters(model) -> None:
    """Copy rank 0's parameters and buffers to every rank, in place (so optimizers that hold
    them keep working): after it, all ranks start from the same weights."""
    world = _require_world("broadcast_parameters")
    if world.comm is None:
        return
    tensors = list(model.parameters()) + [b for _, b in model.named_buffers()]
    for t in tensors:
        if t.data.flags.c_contiguous and t.data.flags.writeable:
            world.comm.Bcast(t.data, root=0)
        else:  # a view: broadcast a contiguous copy and write it back
            copy = np.ascontiguousarray(t.data)
            world.comm.Bcast(copy, root=0)
            t.data[...] = copy
        t._bump_version()
