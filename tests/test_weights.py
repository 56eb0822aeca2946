"""Model weights in safetensors files (tinygrad_lite.weights)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import safetensors.numpy

import tinygrad_lite as tg
from error_checks import raises
from tinygrad_lite.models.gpt import GPT, GPTConfig
from tinygrad_lite.train.checkpoint import CheckpointError
from tinygrad_lite.weights import load_safetensors, read_safetensors, save_safetensors

CONFIG = GPTConfig(vocab_size=30, context_length=8, d_model=16, num_blocks=2, num_heads=2)


def _gpt(seed):
    tg.manual_seed(seed)
    return GPT(CONFIG)


def test_save_then_load_gives_bit_identical_logits(tmp_path):
    model, other = _gpt(1), _gpt(2)
    ids = np.random.default_rng(0).integers(0, CONFIG.vocab_size, size=(3, 8))
    model.eval(), other.eval()
    assert not np.array_equal(model(ids).data, other(ids).data)
    path = save_safetensors(model, tmp_path / "gpt.safetensors",
                            metadata={"config": json.dumps(CONFIG.to_dict())})
    metadata = load_safetensors(other, path)
    np.testing.assert_array_equal(other(ids).data, model(ids).data)
    assert GPTConfig.from_dict(json.loads(metadata["config"])) == CONFIG
    assert [p.name for p in tmp_path.iterdir()] == ["gpt.safetensors"]  # no temporary left


def test_the_file_is_plain_safetensors_with_pytorch_names_and_layouts(tmp_path):
    model = _gpt(1)
    save_safetensors(model, tmp_path / "w.safetensors")
    arrays = safetensors.numpy.load_file(str(tmp_path / "w.safetensors"))
    expected = model.state_dict()
    assert arrays.keys() == expected.keys()
    for name, value in expected.items():
        assert arrays[name].dtype == np.float32 and arrays[name].shape == value.shape
        np.testing.assert_array_equal(arrays[name], value)
    d, v = CONFIG.d_model, CONFIG.vocab_size
    assert arrays["lm_head.weight"].shape == (v, d)               # Linear: (out, in)
    assert arrays["token_embedding.weight"].shape == (v, d)
    assert arrays["blocks.0.self_attn.in_proj_weight"].shape == (3 * d, d)
    assert "position_encoding.pe" not in arrays                  # rebuilt, not stored


@pytest.mark.parametrize("damage", ["truncate", "header", "empty"])
def test_a_damaged_file_gives_a_clear_error(tmp_path, damage):
    path = save_safetensors(_gpt(1), tmp_path / "w.safetensors")
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[:len(data) // 2])
    elif damage == "header":
        path.write_bytes(data[:8] + b"{not json" + data[17:])
    else:
        path.write_bytes(b"")
    with raises(CheckpointError, str(path), "safetensors"):
        load_safetensors(_gpt(2), path)


def test_bad_arguments_and_mismatches(tmp_path):
    model = _gpt(1)
    with raises(TypeError, "save_safetensors", "model", "dict"):
        save_safetensors({}, tmp_path / "x")
    with raises(TypeError, "save_safetensors", "metadata", "str"):
        save_safetensors(model, tmp_path / "x", metadata={"step": 5})
    with raises(FileNotFoundError, "no file"):
        read_safetensors(tmp_path / "missing.safetensors")
    wide = tg.nn.Linear(3, 2, dtype=np.float64)
    save_safetensors(wide, tmp_path / "wide.safetensors")
    with raises(CheckpointError, "weight", "float64", "float32"):
        load_safetensors(tg.nn.Linear(3, 2), tmp_path / "wide.safetensors")
    with raises(Exception, "shape"):
        load_safetensors(tg.nn.Linear(4, 2, dtype=np.float64), tmp_path / "wide.safetensors")
