"""Optimizers and schedulers against hand computations of PyTorch's documented update
equations, over several steps; state_dict round trips; bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_lite as tg
from tinygrad_lite import nn, optim
from tinygrad_lite.optim import lr_scheduler

GRADS = [np.array([0.5, -1.0, 2.0]), np.array([0.1, 0.3, -0.2]), np.array([-1.5, 0.0, 0.7]),
         np.array([0.2, 0.2, 0.2]), np.array([1.0, -2.0, 0.5])]
START = np.array([1.0, -0.5, 0.25])


def run(optimizer_class, steps=5, **options):
    """Apply ``steps`` updates with the fixed gradients GRADS; return the parameter history."""
    p = tg.tensor(START.copy(), requires_grad=True)
    opt = optimizer_class([p], **options)
    history = []
    for g in GRADS[:steps]:
        p.grad = tg.tensor(g)
        opt.step()
        history.append(p.numpy().copy())
    return history


@pytest.mark.parametrize("momentum, dampening, nesterov, weight_decay", [
    (0.0, 0.0, False, 0.0), (0.9, 0.0, False, 0.0), (0.9, 0.5, False, 0.1),
    (0.8, 0.0, True, 0.0), (0.8, 0.0, True, 0.05)])
def test_sgd_matches_hand_computation(momentum, dampening, nesterov, weight_decay):
    lr = 0.1
    got = run(optim.SGD, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
              weight_decay=weight_decay)
    p, buf = START.copy(), None
    for t, g in enumerate(GRADS):
        d = g + weight_decay * p
        if momentum:
            buf = d.copy() if t == 0 else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
        np.testing.assert_allclose(got[t], p, rtol=1e-12)


def adam_by_hand(lr, beta1, beta2, eps, weight_decay, decoupled):
    p, m, v = START.copy(), np.zeros(3), np.zeros(3)
    out = []
    for t, g in enumerate(GRADS, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p)
    return out


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_matches_hand_computation(weight_decay):
    got = run(optim.Adam, lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=weight_decay)
    for a, b in zip(got, adam_by_hand(0.01, 0.8, 0.95, 1e-6, weight_decay, decoupled=False)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("weight_decay", [0.0, 0.5])
def test_adamw_matches_hand_computation(weight_decay):
    got = run(optim.AdamW, lr=0.05, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    for a, b in zip(got, adam_by_hand(0.05, 0.9, 0.999, 1e-8, weight_decay, decoupled=True)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert optim.AdamW([tg.zeros(1, requires_grad=True)]).defaults["weight_decay"] == 0.01


def test_adamw_and_adam_differ_only_by_the_weight_decay_form():
    assert not np.allclose(run(optim.Adam, lr=0.05, weight_decay=0.5)[-1],
                           run(optim.AdamW, lr=0.05, weight_decay=0.5)[-1])
    np.testing.assert_allclose(run(optim.Adam, lr=0.05)[-1],
                               run(optim.AdamW, lr=0.05, weight_decay=0.0)[-1])


def test_parameters_without_grad_are_skipped_and_groups_have_their_own_lr():
    a, b = tg.ones(2, requires_grad=True), tg.ones(2, requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    a.grad = tg.ones(2)
    b.grad = tg.ones(2)
    opt.step()
    np.testing.assert_allclose(a.numpy(), 0.9)
    np.testing.assert_allclose(b.numpy(), 0.0)
    a.grad = None
    opt.step()
    np.testing.assert_allclose(a.numpy(), 0.9)


def test_zero_grad():
    p = tg.ones(3, requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    p.grad = tg.ones(3)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), 0)
    opt.zero_grad()
    assert p.grad is None


def test_step_bumps_the_version_so_a_stale_graph_cannot_use_old_values():
    p = tg.ones(3, requires_grad=True)
    loss = (p * p).sum()
    opt = optim.SGD([p], lr=0.1)
    p.grad = tg.ones(3)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.01),
    lambda ps: optim.AdamW(ps, lr=0.01)])
def test_state_dict_round_trip_continues_identically(make):
    def model_and_data():
        tg.manual_seed(3)
        model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
        return model, tg.randn(8, 3), tg.randn(8, 1)

    def train(model, opt, x, y, steps):
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            opt.step()

    model, x, y = model_and_data()
    opt = make(list(model.parameters()))
    train(model, opt, x, y, 6)
    expected = model.state_dict()

    model2, x, y = model_and_data()
    opt2 = make(list(model2.parameters()))
    train(model2, opt2, x, y, 3)
    saved_model, saved_opt = model2.state_dict(), opt2.state_dict()
    model3, _, _ = model_and_data()
    opt3 = make(list(model3.parameters()))
    model3.load_state_dict(saved_model)
    opt3.load_state_dict(saved_opt)
    train(model3, opt3, x, y, 3)
    for name, value in model3.state_dict().items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)


def test_optimizer_load_state_dict_mismatches():
    p, q = tg.ones(3, requires_grad=True), tg.ones(2, requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    p.grad = tg.ones(3)
    opt.step()
    state = opt.state_dict()
    with pytest.raises(ValueError, match="group 0 has 1 parameters in the saved state but 2 here"):
        optim.Adam([p, q]).load_state_dict(state)
    with pytest.raises(ValueError, match=r"'exp_avg' of parameter 0 has shape \(3,\), the "
                                         r"parameter has shape \(2,\)"):
        optim.Adam([q]).load_state_dict(state)
    with pytest.raises(ValueError, match="keys 'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})
    other = optim.Adam([tg.ones(3, requires_grad=True)])
    other.load_state_dict(state)
    assert other.param_groups[0]["lr"] == 0.1 and other.state_dict()["state"][0]["step"] == 1


def test_optimizer_bad_input():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="lr must be >= 0, got -1"):
        optim.SGD([tg.ones(1, requires_grad=True)], lr=-1)
    with pytest.raises(TypeError, match="dtype int64"):
        optim.SGD([tg.tensor([1, 2])], lr=0.1)
    with pytest.raises(ValueError, match="not a leaf"):
        optim.SGD([tg.ones(1, requires_grad=True) * 2], lr=0.1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([tg.ones(1, requires_grad=True)], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([tg.ones(1, requires_grad=True)], betas=(0.9, 1.0))
    p = tg.ones(1, requires_grad=True)
    with pytest.raises(ValueError, match="more than one place"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(p, lr=0.1)


# -- schedulers -----------------------------------------------------------------------------

def lrs(scheduler, n, *metrics):
    out = []
    for i in range(n):
        out.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.step(*(m[i] for m in metrics))
    return out


def sgd(lr=1.0):
    return optim.SGD([tg.ones(1, requires_grad=True)], lr=lr)


def test_step_lr():
    np.testing.assert_allclose(lrs(lr_scheduler.StepLR(sgd(), step_size=3, gamma=0.5), 8),
                               [1, 1, 1, .5, .5, .5, .25, .25])


def test_cosine_annealing_with_and_without_warmup():
    plain = lrs(lr_scheduler.CosineAnnealingLR(sgd(), T_max=4, eta_min=0.1), 6)
    expected = [0.1 + 0.9 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)] + [0.1]
    np.testing.assert_allclose(plain, expected)
    warm = lrs(lr_scheduler.CosineAnnealingLR(sgd(2.0), T_max=6, warmup_steps=2), 7)
    np.testing.assert_allclose(warm[:3], [1.0, 2.0, 2.0])
    np.testing.assert_allclose(warm[3:], [1 + math.cos(math.pi * s / 4) for s in (1, 2, 3, 4)])
    with pytest.raises(ValueError, match="warmup_steps < T_max"):
        lr_scheduler.CosineAnnealingLR(sgd(), T_max=3, warmup_steps=3)


def test_reduce_lr_on_plateau_patience_factor_min_lr():
    s = lr_scheduler.ReduceLROnPlateau(sgd(), factor=0.5, patience=2, min_lr=0.3)
    metrics = [5, 4, 4, 4, 4, 4, 4, 4, 4, 4]
    # Improvements at epochs 0, 1; bad epochs 2, 3, 4 -> reduce after epoch 4 (3 > patience 2);
    # bad epochs 5, 6, 7 -> reduce after 7 but min_lr 0.3 caps it.
    assert lrs(s, 10, metrics) == [1, 1, 1, 1, 1, .5, .5, .5, .3, .3]


def test_reduce_lr_on_plateau_cooldown_threshold_and_mode():
    s = lr_scheduler.ReduceLROnPlateau(sgd(), factor=0.1, patience=0, cooldown=2)
    assert lrs(s, 7, [1, 1, 1, 1, 1, 1, 1]) == pytest.approx([1, 1, .1, .1, .1, .01, .01])
    # rel threshold: 0.9999 * best is not an improvement with threshold 1e-3.
    s = lr_scheduler.ReduceLROnPlateau(sgd(), factor=0.5, patience=0, threshold=1e-3)
    assert lrs(s, 3, [1.0, 0.9999, 0.99]) == [1, 1, 0.5]
    s = lr_scheduler.ReduceLROnPlateau(sgd(), factor=0.5, patience=0, threshold=0.1,
                                       threshold_mode="abs")
    assert lrs(s, 4, [1.0, 0.95, 0.85, 0.8]) == [1, 1, .5, .5]
    s = lr_scheduler.ReduceLROnPlateau(sgd(), mode="max", factor=0.5, patience=0)
    assert lrs(s, 4, [1.0, 2.0, 1.5, 3.0]) == [1, 1, 1, .5]
    assert s.state_dict()["best"] == 3.0
    with pytest.raises(ValueError, match="factor must be in"):
        lr_scheduler.ReduceLROnPlateau(sgd(), factor=2.0)
    with pytest.raises(ValueError, match="mode must be"):
        lr_scheduler.ReduceLROnPlateau(sgd(), mode="up")


def test_scheduler_state_dict_round_trip():
    s = lr_scheduler.StepLR(sgd(), step_size=2, gamma=0.1)
    for _ in range(3):
        s.step()
    t = lr_scheduler.StepLR(sgd(), step_size=5, gamma=0.5)
    t.load_state_dict(s.state_dict())
    t.step()
    s.step()
    assert t.get_last_lr() == s.get_last_lr() and t.last_epoch == 4
    with pytest.raises(ValueError, match="unexpected keys"):
        t.load_state_dict({"nonsense": 1})


def test_training_with_adamw_lowers_the_loss():
    tg.manual_seed(0)
    x = tg.randn(64, 2)
    y = tg.tensor((np.sin(x.numpy()[:, :1]) + x.numpy()[:, 1:] ** 2).astype(np.float32))
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    opt = optim.AdamW(model.parameters(), lr=0.02)
    losses = []
    for _ in range(200):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
