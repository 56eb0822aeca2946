"""Model weights in the safetensors format: the file other runtimes and PyTorch read.

A safetensors file is a JSON header (every tensor's name, dtype, shape and byte range, plus a
string-to-string ``__metadata__`` table) followed by the raw little-endian bytes. Loading it
parses that header and copies bytes: no code runs, unlike a pickle.

The names are ``model.state_dict()``'s, and the layouts are PyTorch's (``Linear.weight`` is
(out_features, in_features), ``Embedding.weight`` (num_embeddings, dim), attention's
``in_proj_weight`` (3E, E)), so a PyTorch module built with the same attribute names loads the
file with ``load_state_dict`` unchanged::

    from safetensors.torch import load_file
    torch_model.load_state_dict(load_file("gpt.safetensors"))

    save_safetensors(model, "gpt.safetensors", metadata={"config": json.dumps(config)})
    metadata = load_safetensors(model, "gpt.safetensors")   # weights into model; the metadata
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .train.checkpoint import CheckpointError, atomic_write


def _safetensors_numpy():
    import safetensors.numpy  # a dependency of the package; imported when first used
    return safetensors.numpy


def _check_metadata(function: str, metadata) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise TypeError(f"{function}: metadata must be a dict of str to str (safetensors "
                        f"stores strings; json.dumps other values), got {metadata!r:.200}")
    return metadata


def save_safetensors(model, path, metadata: dict | None = None) -> Path:
    """Write ``model``'s parameters and persistent buffers (its ``state_dict``) to ``path`` in
    the safetensors format, atomically (a temporary file renamed into place), with
    ``metadata`` (str -> str) in the header. Returns the path."""
    from .nn.module import Module
    if not isinstance(model, Module):
        raise TypeError(f"save_safetensors: model must be an nn.Module, got "
                        f"{type(model).__name__}")
    metadata = _check_metadata("save_safetensors", metadata)
    arrays = {name: np.ascontiguousarray(value) for name, value in model.state_dict().items()}
    blob = _safetensors_numpy().save(arrays, metadata=metadata or None)
    path = Path(path)
    atomic_write(path, lambda f: f.write(blob))
    return path


def read_safetensors(path) -> tuple[dict, dict]:
    """The arrays and the metadata of a safetensors file. A file that is missing, truncated or
    not safetensors raises ``CheckpointError`` (a ValueError) naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_safetensors: no file {path}")
    data = path.read_bytes()
    try:
        arrays = _safetensors_numpy().load(data)
        header_size = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8:8 + header_size]).get("__metadata__") or {}
    except Exception as e:  # safetensors raises its own SafetensorError, or a parse error
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or "
                              f"corrupted?): {e}") from None
    return arrays, metadata


def load_safetensors(model, path, strict: bool = True) -> dict:
    """Load the weights in ``path`` into ``model`` (``load_state_dict``: names, shapes and
    dtypes must match; ``strict=False`` allows missing and unexpected names). Returns the
    file's metadata."""
    from .nn.module import Module
    if not isinstance(model, Module):
        raise TypeError(f"load_safetensors: model must be an nn.Module, got "
                        f"{type(model).__name__}")
    arrays, metadata = read_safetensors(path)
    expected = model.state_dict()
    for name, array in arrays.items():
        if name in expected and array.dtype != expected[name].dtype:
            raise CheckpointError(f"load_safetensors: {path} holds {name} as {array.dtype}, "
                                  f"the model as {expected[name].dtype}")
    model.load_state_dict(arrays, strict=strict)
    return metadata
