"""Checkpoints: model, optimizer and scheduler state, step/epoch, hyperparameters and RNG state
in one safetensors file that loading can never execute.

Format: safetensors (a JSON header, then the raw bytes of every array: the format the model
weights use too, see ``tinygrad_lite/weights.py``). Every array of the state goes in as its own
tensor; everything else (numbers, strings, lists, the structure of the nested dicts) goes into
one JSON document in the header's metadata, under ``"tinygrad_lite.checkpoint"``, where each
array is replaced by ``{"__ndarray__": "<tensor name>"}``. A file cut short, a header that does
not parse or a missing piece raises ``CheckpointError``. Checkpoints of earlier versions, in a
NumPy ``.npz`` (a zip of ``.npy`` arrays, read with ``allow_pickle=False``, the JSON document
stored as the bytes of the entry ``__metadata__``), still load: the format is recognised by the
file's first bytes, whatever its name.

Array entry names are the path of the array in the state, with each key escaped (``%`` ->
``%25``, ``/`` -> ``%2F``) so that ``{"a/b": x}`` and ``{"a": {"b": y}}`` cannot land on the same
entry; the names are looked up through the metadata, so they are never parsed back. Dict keys
that are the markers above (``__ndarray__``, ``__items__``, ``__tuple__``) are refused at save.

The optimizer's and the scheduler's class names are stored too (``optimizer_class``,
``scheduler_class``): AdamW state does not load into SGD. A ``ZeroRedundancyOptimizer`` is
stored under the class it wraps (its consolidated state dict has that class's format), so its
checkpoints load into that class in one process and back into ZeRO on any number of ranks. Checkpoints written before these
entries existed load without that check (the structure checks still apply).

Writing is atomic: the file is written under a temporary name in the same directory, flushed to
disk, then renamed over the target with ``os.replace`` -- a crash mid-write leaves the previous
checkpoint intact, never a half-written one. A writer killed mid-write (SIGKILL, power loss)
cannot delete its temporary file, so every write first deletes the temporary files of earlier
writers of the same target on this machine whose process is gone (see ``_remove_stale_temps``).

Loading is all-or-nothing: the file is read and checked completely, and the model, optimizer
and scheduler are loaded one after another with a snapshot of each taken first -- if any of them
refuses its state, the ones already loaded get their snapshot back, and the random generators
are set only after everything else succeeded.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import socket
import time
import zipfile
from pathlib import Path

import numpy as np

from ..tensor import get_rng

FORMAT = "tinygrad_lite.checkpoint"
VERSION = 1
_METADATA = "__metadata__"          # the JSON document's entry in a .npz of an earlier version
_HEADER_KEY = "tinygrad_lite.checkpoint"  # ... and its key in a safetensors header's metadata


class CheckpointError(ValueError):
    """A checkpoint file that is truncated, corrupted, of another format, or does not match the
    model/optimizer it is loaded into."""


# -- encoding a nested state into JSON + arrays ----------------------------------------------

_MARKERS = ("__ndarray__", "__items__", "__tuple__")


def _entry_key(key) -> str:
    """A dict key as one component of an array's entry name ("/" cannot occur in it)."""
    return str(key).replace("%", "%25").replace("/", "%2F")


def _encode(value, path: str, arrays: dict):
    """JSON-safe copy of ``value``; arrays are moved into ``arrays`` under their path."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"save_checkpoint: {path!r} is an array of dtype {value.dtype}; only "
                            f"bool, integer and float arrays can be saved")
        if path in arrays:  # cannot happen with escaped keys; never overwrite silently
            raise ValueError(f"save_checkpoint: two arrays would be stored as {path!r}")
        arrays[path] = value
        return {"__ndarray__": path}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        marker = next((k for k in value if k in _MARKERS), None)
        if marker is not None:
            raise ValueError(f"save_checkpoint: {path!r} has the key {marker!r}, which the "
                             f"checkpoint format reserves; rename it")
        if all(isinstance(k, str) for k in value):
            return {k: _encode(v, f"{path}/{_entry_key(k)}", arrays) for k, v in value.items()}
        # Non-string keys (the optimizer's parameter indices) survive as [key, value] pairs.
        bad = next((k for k in value if not isinstance(k, (str, int)) or isinstance(k, bool)),
                   None)
        if bad is not None:
            raise TypeError(f"save_checkpoint: {path!r} has the key {bad!r} of type "
                            f"{type(bad).__name__}; dict keys must be strings or integers")
        return {"__items__": [[k, _encode(v, f"{path}/{_entry_key(k)}", arrays)]
                              for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{path}/{i}", arrays) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{path}/{i}", arrays) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"save_checkpoint: cannot save {path!r} of type {type(value).__name__} "
                    f"(use numbers, strings, lists, dicts and NumPy arrays)")


def _decode(value, arrays: dict, source: str):
    """The inverse of ``_encode``; metadata that ``_encode`` cannot have written raises
    CheckpointError (the file may come from anywhere)."""
    def malformed(what):
        return CheckpointError(f"{source}: the metadata is malformed ({what}): not written by "
                               f"save_checkpoint, or damaged")

    if isinstance(value, dict):
        if "__ndarray__" in value:
            name = value["__ndarray__"]
            if not isinstance(name, str):
                raise malformed(f"array reference {name!r}")
            if name not in arrays:
                raise CheckpointError(f"{source}: the array {name!r} listed in the metadata is "
                                      f"missing from the file")
            return arrays[name]
        if "__items__" in value:
            items = value["__items__"]
            if not isinstance(items, list) or not all(
                    isinstance(kv, list) and len(kv) == 2 and isinstance(kv[0], (str, int))
                    for kv in items):
                raise malformed("'__items__' must be a list of [key, value] pairs")
            return {k: _decode(v, arrays, source) for k, v in items}
        if "__tuple__" in value:
            if not isinstance(value["__tuple__"], list):
                raise malformed("'__tuple__' must be a list")
            return tuple(_decode(v, arrays, source) for v in value["__tuple__"])
        return {k: _decode(v, arrays, source) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays, source) for v in value]
    return value


# -- atomic writes and their temporary files ---------------------------------------------------

# Temporary name: .<target name>.<host>.<pid>.<8 hex>.tmp in the target's directory. The host
# and pid say whose it is, so a later writer can tell a dead writer's leftover from a live one's
# file in progress. (Older versions wrote .<target name>.<pid>.<8 hex>.tmp: read as this host's.)
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:64] or "host"
_TEMP_PATTERN = r"\.{name}\.(?:(?P<host>[A-Za-z0-9-]+)\.)?(?P<pid>\d+)\.[0-9a-f]{{8}}\.tmp"
# A temporary file untouched this long is a leftover even if its pid is in use again (a live
# write keeps changing it; writes take seconds).
_STALE_SECONDS = 24 * 3600


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, but belongs to another user
        return True
    except OverflowError:  # not a pid at all
        return False
    return True


def _remove_stale_temps(path: Path) -> list[Path]:
    """Delete the temporary files that killed writers of ``path`` left behind; returns them.

    Only files of this host whose writer process is gone, or that nobody touched for a day.
    A live writer's file (another process saving to the same target right now, or a thread of
    this one) is never deleted."""
    pattern = re.compile(_TEMP_PATTERN.format(name=re.escape(path.name)))
    removed = []
    try:
        candidates = list(path.parent.iterdir())
    except OSError:
        return removed
    for tmp in candidates:
        match = pattern.fullmatch(tmp.name)
        if match is None or match["host"] not in (None, _HOST):
            continue
        pid = int(match["pid"])
        try:
            age = time.time() - tmp.stat().st_mtime
            if pid == os.getpid() or (_process_alive(pid) and age < _STALE_SECONDS):
                continue
            tmp.unlink()
            removed.append(tmp)
        except FileNotFoundError:  # its writer finished (renamed it) or another cleaner won
            continue
    return removed


def atomic_write(path, write) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it to ``path``.

    Leftovers of earlier writers of ``path`` that were killed mid-write are deleted first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    # A unique name in the same directory (so the rename is atomic: same file system); opened
    # with "x" so it never clobbers anything, and with the usual permissions (umask applies).
    tmp = path.with_name(f".{path.name}.{_HOST}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
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


# -- saving ----------------------------------------------------------------------------------

def save_checkpoint(path, *, model=None, optimizer=None, scheduler=None, step=None, epoch=None,
                    hyperparameters: dict | None = None, extra: dict | None = None,
                    generators: dict | None = None) -> Path:
    """Write a checkpoint to ``path`` atomically and return the path.

    Saved: ``model.state_dict()``, ``optimizer.state_dict()``, ``scheduler.state_dict()`` (each
    if given, the optimizer's and scheduler's class names too), ``step``, ``epoch``,
    ``hyperparameters`` and ``extra`` (JSON-able dicts, arrays allowed), and the state of the
    package random generator plus any named ``np.random.Generator`` in ``generators`` (e.g. the
    DataLoader's), so a resumed run draws the same random numbers as an uninterrupted one.
    """
    rng = {"package": get_rng().bit_generator.state}
    for name, generator in (generators or {}).items():
        rng[name] = generator.bit_generator.state
    tree = {
        "format": FORMAT, "version": VERSION, "step": step, "epoch": epoch,
        "hyperparameters": hyperparameters or {}, "extra": extra or {}, "rng": rng,
        "model": None if model is None else dict(model.state_dict()),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "optimizer_class": None if optimizer is None else _state_class_name(optimizer),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "scheduler_class": None if scheduler is None else type(scheduler).__name__,
    }
    arrays = {}
    metadata = json.dumps(_encode(tree, "", arrays))
    import safetensors.numpy  # a dependency; imported on first use (import cost)
    blob = safetensors.numpy.save({name: np.ascontiguousarray(a) for name, a in arrays.items()},
                                  metadata={_HEADER_KEY: metadata})
    atomic_write(path, lambda f: f.write(blob))
    return Path(path)


# -- loading ---------------------------------------------------------------------------------

_ZIP_MAGIC, _NPY_MAGIC = b"PK\x03\x04", b"\x93NUMPY"


def _read_arrays(path, source: str) -> dict:
    """Every array in the file, and the JSON document as the bytes of the entry
    ``__metadata__``, read without unpickling anything: a safetensors checkpoint, or a ``.npz``
    one of an earlier version."""
    unreadable = (f"{source} is not a readable checkpoint (truncated or corrupted, or not a "
                  f"checkpoint at all)")
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"no checkpoint at {source}") from None
    except IsADirectoryError:
        raise CheckpointError(f"{source} is a directory, not a checkpoint file") from None
    with f:
        magic = f.read(6)
        if magic == _NPY_MAGIC:
            raise CheckpointError(f"{unreadable}: it is a single NumPy array (.npy); a "
                                  f"checkpoint is a .npz written by save_checkpoint")
        if magic[:4] != _ZIP_MAGIC:
            f.seek(0)
            return _read_safetensors(f.read(), unreadable)
        f.seek(0)
        try:
            with np.load(f, allow_pickle=False) as npz:
                return {name: npz[name] for name in npz.files}
        except Exception as e:  # zipfile, zlib and NumPy's format errors, in many classes
            if "pickle" in str(e).lower():  # never repeat NumPy's advice to allow pickles
                raise CheckpointError(f"{unreadable}: it holds pickled Python objects, which "
                                      f"loading never unpickles (that could run any code)") \
                    from None
            raise CheckpointError(f"{unreadable}: {type(e).__name__}: {e}") from None


def _read_safetensors(data: bytes, unreadable: str) -> dict:
    """The arrays of a safetensors checkpoint, plus its JSON document as ``__metadata__``."""
    import safetensors.numpy
    header_size = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if not 0 < header_size <= len(data) - 8 or data[8:9] != b"{":
        raise CheckpointError(f"{unreadable}: it starts neither like a safetensors file nor "
                              f"like a .npz (zip) file of an earlier version")
    try:
        header = json.loads(data[8:8 + header_size])
        arrays = safetensors.numpy.load(data)
    except Exception as e:  # safetensors' own SafetensorError, JSON and Unicode errors
        raise CheckpointError(f"{unreadable}: {type(e).__name__}: {e}") from None
    document = (header.get("__metadata__") or {}).get(_HEADER_KEY) \
        if isinstance(header, dict) else None
    if not isinstance(document, str):
        raise CheckpointError(f"{unreadable}: it is a safetensors file without the "
                              f"{_HEADER_KEY!r} metadata (model weights, not a checkpoint?)")
    arrays[_METADATA] = np.frombuffer(document.encode("utf-8"), dtype=np.uint8)
    return arrays


def _read_metadata(arrays: dict, source: str) -> dict:
    if _METADATA not in arrays:
        raise CheckpointError(f"{source} has no {_METADATA!r} entry: it is a .npz file but not a "
                              f"tinygrad_lite checkpoint")
    raw = arrays.pop(_METADATA)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{source}: the metadata is corrupted (an array of {raw.dtype} "
                              f"{raw.shape}, not bytes)")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"{source}: the metadata is corrupted ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{source}: not a tinygrad_lite checkpoint (format "
                              f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{source}: checkpoint format version {meta.get('version')!r}, "
                              f"this version of tinygrad_lite reads version {VERSION}")
    return meta


# The entries every checkpoint has, and what each must be (None allowed where it may be absent).
_REQUIRED = {"step": (int, float, type(None)), "epoch": (int, float, type(None)), "hyperparameters": dict,
             "extra": dict, "rng": dict, "model": (dict, type(None)),
             "optimizer": (dict, type(None)), "scheduler": (dict, type(None))}
_OPTIONAL = {"optimizer_class": (str, type(None)), "scheduler_class": (str, type(None))}


def _check_entries(checkpoint: dict, source: str) -> None:
    for name, kinds in list(_REQUIRED.items()) + list(_OPTIONAL.items()):
        if name not in checkpoint:
            if name in _OPTIONAL:
                continue
            raise CheckpointError(f"{source}: the entry {name!r} is missing from the metadata "
                                  f"(not written by save_checkpoint, or damaged)")
        value = checkpoint[name]
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise CheckpointError(f"{source}: the entry {name!r} is {type(value).__name__} "
                                  f"{value!r:.60}, not what save_checkpoint writes")
    if not isinstance(checkpoint["rng"].get("package"), dict):
        raise CheckpointError(f"{source}: the entry 'rng' has no state for the package "
                              f"generator")


def _rng_states(checkpoint: dict, source: str, generators: dict) -> list:
    """[(generator, saved state)] to restore, each state tried on a scratch generator first so
    that a bad one raises before anything changes."""
    pairs = [(get_rng(), checkpoint["rng"]["package"], "package")]
    for name, generator in (generators or {}).items():
        if name not in checkpoint["rng"]:
            raise CheckpointError(f"{source} holds no state for the generator {name!r} "
                                  f"(saved: {sorted(checkpoint['rng'])})")
        pairs.append((generator, checkpoint["rng"][name], name))
    for generator, state, name in pairs:
        try:
            type(generator.bit_generator)().state = state
        except (ValueError, TypeError, KeyError) as e:
            raise CheckpointError(f"{source}: the saved state of the generator {name!r} does "
                                  f"not fit its {type(generator.bit_generator).__name__}: {e}") \
                from None
    return [(generator, state) for generator, state, _ in pairs]


def _is_sharded(target) -> bool:
    """A ZeroRedundancyOptimizer: its whole state exists only after a collective call."""
    from ..optim.zero import ZeroRedundancyOptimizer  # (here: the optimizers need no MPI code)
    return isinstance(target, ZeroRedundancyOptimizer)


def _state_class_name(target) -> str:
    """The class whose state-dict format ``target`` saves and loads: a ZeroRedundancyOptimizer
    uses the plain format of the optimizer class it wraps, so its checkpoints load into that
    class in one process, and the other way round."""
    return target.optimizer_class.__name__ if _is_sharded(target) else type(target).__name__


def _check_class(checkpoint: dict, name: str, target, source: str) -> None:
    saved = checkpoint.get(f"{name}_class")  # None in checkpoints older than this entry
    if saved is not None and saved != _state_class_name(target):
        raise CheckpointError(f"{source} holds the state of a {saved} {name}, but a "
                              f"{type(target).__name__} was given to load it into; create a "
                              f"{saved} (with the same parameters) to resume from it")


def _snapshot(name: str, target):
    """A copy of target's state that its load_state_dict can put back."""
    state = target.state_dict()
    if name == "model":  # (the arrays may be views of the parameters: copy them)
        return {k: np.array(getattr(v, "data", v), copy=True) for k, v in state.items()}
    return copy.deepcopy(state)


def _load_into(targets: list, checkpoint: dict, source: str, strict: bool) -> None:
    """Load each (name, target) in turn; if one fails, give the earlier ones their state back.

    A ZeroRedundancyOptimizer has no snapshot (its whole state exists only after a collective
    call): it is loaded last, so that its refusal leaves everything else as it was, and its
    load_state_dict checks the state (through the optimizer class it wraps) before using it."""
    done = []
    for name, target in sorted(targets, key=lambda item: _is_sharded(item[1])):
        snapshot = None if _is_sharded(target) else _snapshot(name, target)
        try:
            if name == "model":
                target.load_state_dict(checkpoint[name], strict=strict)
            else:
                target.load_state_dict(checkpoint[name])
        except (ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
            for done_target, done_snapshot in reversed(done + [(target, snapshot)]):
                if done_snapshot is not None:
                    done_target.load_state_dict(done_snapshot)
            raise CheckpointError(f"{source}: the saved {name} state does not fit the "
                                  f"{type(target).__name__} given: {e} (nothing was loaded)") \
                from None
        done.append((target, snapshot))


def load_checkpoint(path, model=None, optimizer=None, scheduler=None, strict: bool = True,
                    restore_rng: bool = True, generators: dict | None = None) -> dict:
    """Read a checkpoint written by ``save_checkpoint``; return its contents as a dict (keys
    ``model``, ``optimizer``, ``scheduler``, ``step``, ``epoch``, ``hyperparameters``, ``extra``,
    ``rng``, and the class names ``optimizer_class``, ``scheduler_class``).

    If ``model``/``optimizer``/``scheduler`` are given their state is loaded into them (a
    mismatch raises ``CheckpointError`` naming the keys, shapes or classes); with
    ``restore_rng`` the package generator (and the named ``generators``) continue from the
    saved state. All or nothing: on any error nothing given is changed.
    """
    source = str(path)
    arrays = _read_arrays(path, source)
    meta = _read_metadata(arrays, source)
    try:
        checkpoint = _decode(meta, arrays, source)
    except RecursionError:
        raise CheckpointError(f"{source}: the metadata is nested too deeply") from None
    _check_entries(checkpoint, source)
    targets = [(name, target) for name, target in
               (("model", model), ("optimizer", optimizer), ("scheduler", scheduler))
               if target is not None]
    for name, target in targets:  # everything that can be checked before loading anything
        if checkpoint[name] is None:
            raise CheckpointError(f"{source} holds no {name} state, but a {name} was given to "
                                  f"load it into")
        if name != "model":
            _check_class(checkpoint, name, target, source)
    rng_states = _rng_states(checkpoint, source, generators) if restore_rng else []
    _load_into(targets, checkpoint, source, strict)
    for generator, state in rng_states:
        generator.bit_generator.state = state
    return checkpoint
