"""The dimension arguments that many ops share, resolved in one place so that every op agrees.

PyTorch's argument names next to NumPy's: ``dim``/``axis`` and ``keepdim``/``keepdims``. Every
op takes PyTorch's names; NumPy's are accepted as aliases (give one or the other). (Checks of
the values themselves -- flags, numbers, dtypes, shapes, one dim of a tensor -- are in
``tinygrad_lite/checks.py``.)
"""

from __future__ import annotations

from ..checks import check_flag


def dim_arg(op: str, dim, axis, default=None):
    """The dimension argument, given as PyTorch's ``dim`` or NumPy's ``axis`` (not both).

    ``default`` is the op's default ``dim``: a ``dim`` still equal to it counts as not given.
    An empty ``dim`` is refused: torch reads ``dim=()`` as every dim, NumPy's ``axis=()`` as none,
    and running with either meaning would surprise the half of users who expect the other."""
    if isinstance(dim, (tuple, list)) and len(dim) == 0:
        raise ValueError(f"{op}(): dim=() means every dim in PyTorch but none in NumPy; say "
                         f"which: dim=None for every dim, axis=() for none")
    if axis is None:
        return dim
    if dim is not None and dim != default:
        raise TypeError(f"{op}() got both dim={dim!r} and axis={axis!r}; axis is NumPy's name "
                        f"for PyTorch's dim, so pass only one of them")
    return axis


def keepdim_arg(op: str, keepdim: bool, keepdims) -> bool:
    """``keepdim`` (PyTorch), or ``keepdims`` (NumPy) when that is given instead."""
    if keepdims is None:
        return check_flag(op, "keepdim", keepdim)
    if check_flag(op, "keepdim", keepdim):
        raise TypeError(f"{op}() got both keepdim and keepdims; keepdims is NumPy's name for "
                        f"PyTorch's keepdim, so pass only one of them")
    return check_flag(op, "keepdims", keepdims)
