"""The fused Adam/AdamW kernel (csrc/adam.c) against its NumPy reference and PyTorch's
documented update equations, and the bridge's input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_lite import kernels as K

pytestmark = pytest.mark.usefixtures("c_kernels")


def adam_by_hand(p, g, m, v, lr, b1, b2, eps, wd, decoupled, t):
    """The update exactly as PyTorch documents it, in float64, returning new (p, m, v)."""
    p, g, m, v = (np.asarray(a, dtype=np.float64) for a in (p, g, m, v))
    if decoupled:
        p = p * (1 - lr * wd)
    else:
        g = g + wd * p
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("n", [1, 7, 1000, 300_001])  # the last one is threaded
def test_c_kernel_matches_reference_and_hand_computation(dtype, decoupled, n):
    rng = np.random.default_rng(n)
    p0 = rng.standard_normal(n).astype(dtype)
    settings = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1,
                    decoupled=decoupled)
    state = {name: (p0.copy(), np.zeros(n, dtype), np.zeros(n, dtype)) for name in ("c", "ref")}
    hand = (p0.astype(np.float64), np.zeros(n), np.zeros(n))
    for step in range(1, 6):
        g = rng.standard_normal(n).astype(dtype)
        with K.use_backend("c"):
            K.adam_step(*state["c"][:1], g, *state["c"][1:], step=step, **settings)
        with K.use_backend("numpy"):
            K.adam_step(*state["ref"][:1], g, *state["ref"][1:], step=step, **settings)
        hand = adam_by_hand(*hand[:1], g, *hand[1:], settings["lr"], settings["beta1"],
                            settings["beta2"], settings["eps"], settings["weight_decay"],
                            decoupled, step)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for c, ref, exact in zip(state["c"], state["ref"], hand):
        np.testing.assert_allclose(c, ref, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(c, exact, rtol=rtol * 10, atol=rtol * 10)


def test_bad_inputs_are_refused_before_c():
    p, g, m, v = (np.zeros(4, np.float32) for _ in range(4))
    common = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=True)
    with pytest.raises(ValueError, match="shape"):
        K.adam_step(p, np.zeros(5, np.float32), m, v, step=1, **common)
    with pytest.raises(TypeError, match="same dtype"):
        K.adam_step(p, np.zeros(4, np.float64), m, v, step=1, **common)
    with pytest.raises(ValueError, match="share memory"):
        K.adam_step(p, g, m, m, step=1, **common)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.adam_step(np.zeros((4, 2), np.float32)[:, 0], g, m, v, step=1, **common)
    with pytest.raises(ValueError, match="step"):
        K.adam_step(p, g, m, v, step=0, **common)
    with pytest.raises(TypeError, match="float32 or float64"):
        K.adam_step(p.astype(np.int32), g, m, v, step=1, **common)
    assert math.isfinite(float(p.sum()))  # nothing was written by the refused calls


@pytest.mark.parametrize("name, value, error, words", [
    ("beta1", 1.0, ValueError, "in [0, 1)"), ("beta1", -0.1, ValueError, "in [0, 1)"),
    ("beta2", 1.0, ValueError, "in [0, 1)"), ("beta2", math.nan, ValueError, "finite"),
    ("lr", math.nan, ValueError, "finite"), ("lr", math.inf, ValueError, "finite"),
    ("eps", -math.inf, ValueError, "finite"), ("weight_decay", math.nan, ValueError, "finite"),
    ("lr", "0.1", TypeError, "real number"), ("eps", None, TypeError, "real number"),
    ("beta1", True, TypeError, "real number"),
    ("step", 1.5, ValueError, "integer >= 1"), ("step", True, ValueError, "integer >= 1"),
    ("step", -3, ValueError, "integer >= 1")])
def test_bad_scalars_are_refused_before_c(name, value, error, words):
    """beta1 = 1.0 used to reach the bias correction and raise ZeroDivisionError; a NaN lr
    silently wrote NaN into every weight."""
    p, g, m, v = (np.full(4, 0.5, np.float32) for _ in range(4))
    args = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=True,
                step=1)
    args[name] = value
    with pytest.raises(error) as info:
        K.adam_step(p, g, m, v, **args)
    message = str(info.value)
    assert message.startswith(f"adam_step: {name} ") and words in message, message
    np.testing.assert_array_equal(p, 0.5)  # nothing was written
    np.testing.assert_array_equal(m, 0.5)


def test_numpy_scalars_are_accepted():
    p, g, m, v = (np.full(4, 0.5, np.float64) for _ in range(4))
    K.adam_step(p, g, m, v, lr=np.float32(1e-3), beta1=np.float64(0.9), beta2=0.999,
                eps=np.float32(1e-8), weight_decay=np.int64(0), decoupled=False,
                step=np.int64(2))
    assert np.isfinite(p).all() and not np.array_equal(p, np.full(4, 0.5))
