"""Checkpoints: model, optimizer and scheduler state, step/epoch, hyperparameters and RNG state
in one ``.npz`` file that loading can never execute.

Format: a NumPy ``.npz`` (a zip of ``.npy`` arrays, read with ``allow_pickle=False``). Every
array of the state goes in as its own entry; everything else (numbers, strings, lists, the
structure of the nested dicts) goes into one JSON document stored as the bytes of the entry
``__metadata__``, where each array is replaced by ``{"__ndarray__": "<entry name>"}``. The zip's
per-entry CRC catches corrupted bytes; a missing or unreadable piece raises ``CheckpointError``.

Writing is atomic: the file is written under a temporary name in the same directory, flushed to
disk, then renamed over the target with ``os.replace`` -- a crash mid-write leaves the previous
checkpoint intact, never a half-written one.
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
from pathlib import Path

import numpy as np

from ..tensor import get_rng

FORMAT = "tinygrad_lite.checkpoint"
VERSION = 1
_METADATA = "__metadata__"


class CheckpointError(ValueError):
    """A checkpoint file that is truncated, corrupted, of another format, or does not match the
    model/optimizer it is loaded into."""


# -- encoding a nested state into JSON + arrays ----------------------------------------------

def _encode(value, path: str, arrays: dict):
    """JSON-safe copy of ``value``; arrays are moved into ``arrays`` under their path."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"save_checkpoint: {path!r} is an array of dtype {value.dtype}; only "
                            f"bool, integer and float arrays can be saved")
        arrays[path] = value
        return {"__ndarray__": path}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _encode(v, f"{path}/{k}", arrays) for k, v in value.items()}
        # Non-string keys (the optimizer's parameter indices) survive as [key, value] pairs.
        return {"__items__": [[k, _encode(v, f"{path}/{k}", arrays)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{path}/{i}", arrays) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{path}/{i}", arrays) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"save_checkpoint: cannot save {path!r} of type {type(value).__name__} "
                    f"(use numbers, strings, lists, dicts and NumPy arrays)")


def _decode(value, arrays: dict, source: str):
    if isinstance(value, dict):
        if "__ndarray__" in value:
            name = value["__ndarray__"]
            if name not in arrays:
                raise CheckpointError(f"{source}: the array {name!r} listed in the metadata is "
                                      f"missing from the file")
            return arrays[name]
        if "__items__" in value:
            return {k: _decode(v, arrays, source) for k, v in value["__items__"]}
        if "__tuple__" in value:
            return tuple(_decode(v, arrays, source) for v in value["__tuple__"])
        return {k: _decode(v, arrays, source) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays, source) for v in value]
    return value


def atomic_write(path, write) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name in the same directory (so the rename is atomic: same file system); opened
    # with "x" so it never clobbers anything, and with the usual permissions (umask applies).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# -- saving and loading ----------------------------------------------------------------------

def save_checkpoint(path, *, model=None, optimizer=None, scheduler=None, step=None, epoch=None,
                    hyperparameters: dict | None = None, extra: dict | None = None,
                    generators: dict | None = None) -> Path:
    """Write a checkpoint to ``path`` atomically and return the path.

    Saved: ``model.state_dict()``, ``optimizer.state_dict()``, ``scheduler.state_dict()`` (each
    if given), ``step``, ``epoch``, ``hyperparameters`` and ``extra`` (JSON-able dicts, arrays
    allowed), and the state of the package random generator plus any named
    ``np.random.Generator`` in ``generators`` (e.g. the DataLoader's), so a resumed run draws
    the same random numbers as an uninterrupted one.
    """
    rng = {"package": get_rng().bit_generator.state}
    for name, generator in (generators or {}).items():
        rng[name] = generator.bit_generator.state
    tree = {
        "format": FORMAT, "version": VERSION, "step": step, "epoch": epoch,
        "hyperparameters": hyperparameters or {}, "extra": extra or {}, "rng": rng,
        "model": None if model is None else dict(model.state_dict()),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
    }
    arrays = {}
    metadata = json.dumps(_encode(tree, "", arrays)).encode("utf-8")
    arrays[_METADATA] = np.frombuffer(metadata, dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))
    return Path(path)


def load_checkpoint(path, model=None, optimizer=None, scheduler=None, strict: bool = True,
                    restore_rng: bool = True, generators: dict | None = None) -> dict:
    """Read a checkpoint written by ``save_checkpoint``; return its contents as a dict (keys
    ``model``, ``optimizer``, ``scheduler``, ``step``, ``epoch``, ``hyperparameters``, ``extra``,
    ``rng``).

    If ``model``/``optimizer``/``scheduler`` are given their state is loaded into them (a
    mismatch raises ``CheckpointError`` naming the keys or shapes); with ``restore_rng`` the
    package generator (and the named ``generators``) continue from the saved state.
    """
    source = str(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"no checkpoint at {source}") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise CheckpointError(f"{source} is not a readable checkpoint (truncated or corrupted, "
                              f"or not a checkpoint at all): {e}") from None
    if _METADATA not in arrays:
        raise CheckpointError(f"{source} has no {_METADATA!r} entry: it is a .npz file but not a "
                              f"tinygrad_lite checkpoint")
    try:
        meta = json.loads(arrays.pop(_METADATA).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{source}: the metadata is corrupted ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{source}: not a tinygrad_lite checkpoint (format "
                              f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{source}: checkpoint format version {meta.get('version')}, this "
                              f"version of tinygrad_lite reads version {VERSION}")
    checkpoint = _decode(meta, arrays, source)
    for name, target in (("model", model), ("optimizer", optimizer), ("scheduler", scheduler)):
        if target is None:
            continue
        if checkpoint.get(name) is None:
            raise CheckpointError(f"{source} holds no {name} state, but a {name} was given to "
                                  f"load it into")
        try:
            if name == "model":
                target.load_state_dict(checkpoint[name], strict=strict)
            else:
                target.load_state_dict(checkpoint[name])
        except (ValueError, TypeError, KeyError) as e:
            raise CheckpointError(f"{source}: the saved {name} state does not fit the "
                                  f"{type(target).__name__} given: {e}") from None
    if restore_rng:
        get_rng().bit_generator.state = checkpoint["rng"]["package"]
        for name, generator in (generators or {}).items():
            if name not in checkpoint["rng"]:
                raise CheckpointError(f"{source} holds no state for the generator {name!r} "
                                      f"(saved: {sorted(checkpoint['rng'])})")
            generator.bit_generator.state = checkpoint["rng"][name]
    return checkpoint
