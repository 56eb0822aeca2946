"""GPT.generate: the KV cache (cached logits equal a full recompute at every step, also once
the window slides), top-p sampling, determinism and argument checks."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_lite as tg
from error_checks import raises
from tinygrad_lite import nn
from tinygrad_lite.models import gpt as gpt_module
from tinygrad_lite.models.gpt import GPT, GPTConfig
from tinygrad_lite.models.sampling import sample_next

CONFIG = GPTConfig(vocab_size=40, context_length=12, d_model=24, num_blocks=2, num_heads=3,
                   dropout=0.1)


@pytest.fixture(scope="module")
def model():
    tg.manual_seed(5)
    m = GPT(CONFIG)
    # a few training steps, so the logits are not those of a fresh initialisation
    optimizer = tg.optim.AdamW(m.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    for _ in range(5):
        ids = rng.integers(0, CONFIG.vocab_size, size=(4, CONFIG.context_length + 1))
        _, loss = m(ids[:, :-1], ids[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return m


def _logits_at_every_step(model, monkeypatch, prompt, steps, **kwargs):
    """The logits ``generate`` samples from at each step (recorded on their way to
    ``sample_next``), and the ids it returns."""
    seen = []

    def recording(logits, *args, **kw):
        seen.append(logits.copy())
        return sample_next(logits, *args, **kw)

    monkeypatch.setattr(gpt_module, "sample_next", recording)
    ids = model.generate(prompt, steps, **kwargs)
    return seen, ids


@pytest.mark.parametrize("batch, prompt_len", [(1, 1), (3, 5), (2, 12), (1, 17)])
def test_cached_logits_equal_a_full_recompute_at_every_step(model, monkeypatch, batch,
                                                            prompt_len):
    """20 new tokens: inside the window, across its edge and past it (the window slides)."""
    prompt = np.random.default_rng(prompt_len).integers(0, CONFIG.vocab_size,
                                                        size=(batch, prompt_len))
    cached, ids_cached = _logits_at_every_step(model, monkeypatch, prompt, 20, temperature=0)
    full, ids_full = _logits_at_every_step(model, monkeypatch, prompt, 20, temperature=0,
                                           use_cache=False)
    assert len(cached) == len(full) == 20
    for step, (a, b) in enumerate(zip(cached, full)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=f"step {step}")
    np.testing.assert_array_equal(ids_cached, ids_full)
    # and each step's logits are what a plain forward pass gives for the last window
    with tg.no_grad():
        model.eval()
        for step in (0, 7, 19):
            window = ids_full[:, :prompt_len + step][:, -CONFIG.context_length:]
            expected = model(window).data[:, -1].astype(np.float64)
            np.testing.assert_allclose(cached[step], expected, rtol=1e-5, atol=1e-5)
        model.train()


def test_generation_is_deterministic_for_a_seed_and_restores_the_mode(model):
    prompt = np.array([[3, 1, 4]])
    runs = [model.generate(prompt, 15, temperature=0.9, top_k=10, top_p=0.9,
                           rng=np.random.default_rng(7)) for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert model.training
    assert runs[0].shape == (1, 18) and np.array_equal(runs[0][:, :3], prompt)


def test_top_p_keeps_the_smallest_nucleus():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    rng = np.random.default_rng(0)
    drawn = {int(sample_next(logits, 1.0, None, rng, top_p=0.7)[0, 0]) for _ in range(400)}
    assert drawn == {0, 1}  # 0.5 < 0.7 <= 0.5 + 0.3: the first two tokens
    drawn = {int(sample_next(logits, 1.0, None, rng, top_p=0.5)[0, 0]) for _ in range(200)}
    assert drawn == {0}
    drawn = {int(sample_next(logits, 1.0, None, rng, top_p=1.0)[0, 0]) for _ in range(400)}
    assert drawn == {0, 1, 2, 3}
    # top_p=1 is no filter at all: the same draws as without it
    a = sample_next(np.tile(logits, (50, 1)), 1.0, None, np.random.default_rng(3), top_p=1.0)
    b = sample_next(np.tile(logits, (50, 1)), 1.0, None, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)


def test_sampling_arguments_are_checked(model):
    prompt = np.array([[1, 2]])
    for top_p in (0, 0.0, 1.5, -0.1, float("nan")):
        with raises(ValueError, "generate", "top_p", repr(top_p)):
            model.generate(prompt, 1, top_p=top_p)
    with raises(TypeError, "generate", "top_p", "'0.5'"):
        model.generate(prompt, 1, top_p="0.5")
    with raises(ValueError, "generate", "temperature", "-1"):
        model.generate(prompt, 1, temperature=-1)
    with raises(ValueError, "generate", "temperature", "inf"):
        model.generate(prompt, 1, temperature=float("inf"))
    with raises(ValueError, "generate", "top_k", "0"):
        model.generate(prompt, 1, top_k=0)
    with raises(TypeError, "generate", "top_k", "2.5"):
        model.generate(prompt, 1, top_k=2.5)


def test_kv_cache_guards_its_use(model):
    block = model.blocks[0]
    x = tg.randn(1, 3, CONFIG.d_model)
    with raises(RuntimeError, "kv_cache", "no_grad"):
        block(x, kv_cache=nn.KVCache(4))
    with tg.no_grad():
        cache = nn.KVCache(4)
        block(x, kv_cache=cache)
        assert cache.length == 3
        with raises(ValueError, "KVCache", "capacity 4"):
            block(x, kv_cache=cache)
        with raises(ValueError, "kv_cache", "attn_mask"):
            block.self_attn(x, attn_mask=np.zeros((3, 3), bool), kv_cache=nn.KVCache(4))
        with raises(ValueError, "GPT", "context_length=12"):
            model.hidden_states(np.zeros((1, 5), np.int64),   # 10 cached + 5 new > 12
                                [_filled_cache(10) for _ in model.blocks])


def _filled_cache(n):
    cache = nn.KVCache(CONFIG.context_length)
    heads, hs = CONFIG.num_heads, CONFIG.d_model // CONFIG.num_heads
    cache.append(np.zeros((1, heads, n, hs), np.float32), np.zeros((1, heads, n, hs), np.float32))
    return cache
