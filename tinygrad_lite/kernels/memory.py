"""Output arrays for the kernels: large ones reuse memory maps instead of fresh allocations."""

from __future__ import annotations

import math
import mmap
import weakref

import numpy as np

# A fresh large array is memory the operating system maps and zeroes page by page when it is
# first written: for the tiny GPT's 100 MB logits gradient that costs ~20 ms at one thread, as
# much as the cross-entropy kernel itself, every step -- and glibc's malloc hands blocks that big
# back to the system on free, so the next step pays again. So outputs of at least
# _REUSE_MIN_BYTES come from a small cache of anonymous memory maps instead (the idea of
# PyTorch's CUDA caching allocator): when the last array or view using a map is gone, the map
# goes back to the cache, and the next output of the same size reuses it, already mapped.
#
# How "the last view is gone" is known: the output is a view of `flat`, a 1-D array made with
# np.frombuffer over the map. NumPy points every view's .base at `flat` (not at the map, which is
# not an array), so `flat` lives exactly as long as any view of the output does, and a
# weakref.finalize on it returns the map. The cache holds at most _REUSE_CACHE_BYTES of unused
# maps; ``empty_cache()`` releases them.

_REUSE_MIN_BYTES = 4 << 20
_REUSE_CACHE_BYTES = 1 << 30
_free_maps: dict = {}  # size in bytes -> unused memory maps of that size
_free_bytes = 0


def _return_map(buf: mmap.mmap, size: int) -> None:
    global _free_bytes
    if _free_bytes + size <= _REUSE_CACHE_BYTES:
        _free_maps.setdefault(size, []).append(buf)
        _free_bytes += size
    # else: dropped; the map is unmapped when the last reference to it goes


def empty_cache() -> None:
    """Release the memory kept for reuse by large kernel outputs (see above)."""
    global _free_bytes
    _free_maps.clear()
    _free_bytes = 0


def _empty(shape: tuple, dtype: np.dtype) -> np.ndarray:
    """np.empty(shape, dtype) for kernel outputs; large ones reuse memory (see above)."""
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < _REUSE_MIN_BYTES:
        return np.empty(shape, dtype=dtype)
    global _free_bytes
    size = -(-nbytes // (2 << 20)) * (2 << 20)  # whole 2 MiB huge pages: sizes repeat better
    maps = _free_maps.get(size)
    if maps:
        buf = maps.pop()
        _free_bytes -= size
    else:
        # Private, like malloc's memory: a forked child writing to an output must not change
        # the parent's copy (mmap's default, MAP_SHARED, would share it).
        buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
        if hasattr(mmap, "MADV_HUGEPAGE"):  # fewer page faults and TLB misses, as NumPy does
            buf.madvise(mmap.MADV_HUGEPAGE)
    flat = np.frombuffer(buf, dtype=dtype, count=nbytes // dtype.itemsize)
    weakref.finalize(flat, _return_map, buf, size)
    return flat.reshape(shape)
