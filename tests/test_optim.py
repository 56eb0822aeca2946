"""Optimizers and schedulers against hand computations of PyTorch's documented update
equations, over several steps; state_dict round trips; bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

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
    lambda ps: optim.AdamW(ps, lr=0.01),
    lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True, weight_decay=0.01)])
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
    with pytest.raises(ValueError, match=r"SGD: invalid lr=-1: lr must be a finite number in \["):
        optim.SGD([tg.ones(1, requires_grad=True)], lr=-1)
    with pytest.raises(TypeError, match="dtype int64"):
        optim.SGD([tg.tensor([1, 2])], lr=0.1)
    with pytest.raises(ValueError, match="not a leaf"):
        optim.SGD([tg.ones(1, requires_grad=True) * 2], lr=0.1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([tg.ones(1, requires_grad=True)], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"Adam: invalid beta2=1.0: beta2 must be .* \[0, 1\)"):
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
    with pytest.raises(ValueError, match=r"warmup_steps=3: warmup_steps must be .* \[0, 3\)"):
        lr_scheduler.CosineAnnealingLR(sgd(), T_max=3, warmup_steps=3)


def test_reduce_lr_on_plateau_patience_factor_min_lr():
    s = lr_scheduler.ReduceLROnPlateau(sgd(), factor=0.5, patience=2, min_lr=0.3)
    metrics = [5, 4, 4, 4, 4, 4, 4, 4, 4, 4]
    # Improvements at epochs 0, 1; bad epochs 2, 3, 4 -> reduce after epoch 4 (3 > patience 2);
    # bad epochs 5, 6, 7 -> reduce after 7 but min_lr 0.3 caps it.
    assert lrs(s, 10, metrics) == [1, 1, 1, 1, 1, .5, .5, .5, .3, .3]


def test_a_scheduler_drives_a_zero_optimizer():
    """As in PyTorch (where it is an Optimizer): the scheduler sets the lr of its param_groups,
    and its step uses it (a world of 1 here)."""
    tg.distributed.init()
    p = nn.Parameter(np.ones(3, dtype=np.float32))
    zero = optim.ZeroRedundancyOptimizer([p], optim.SGD, lr=1.0)
    s = lr_scheduler.ReduceLROnPlateau(zero, factor=0.5, patience=0)
    s.step(1.0)
    s.step(2.0)  # worse, patience 0: halve
    assert zero.param_groups[0]["lr"] == 0.5
    p.grad = tg.Tensor(np.ones(3, dtype=np.float32))
    zero.step()
    np.testing.assert_array_equal(p.numpy(), [0.5, 0.5, 0.5])


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
    with pytest.raises(ValueError, match=r"factor=2.0: factor must be .* in \(0, 1\)"):
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


# -- RMSprop -------------------------------------------------------------------------------

def rmsprop_by_hand(lr, alpha, eps, weight_decay, momentum, centered):
    """torch.optim.RMSprop's algorithm (its documentation's pseudo-code), in NumPy."""
    p = START.copy()
    square_avg, grad_avg, buf = np.zeros(3), np.zeros(3), np.zeros(3)
    out = []
    for g in GRADS:
        if weight_decay:
            g = g + weight_decay * p
        square_avg = alpha * square_avg + (1 - alpha) * g * g
        if centered:
            grad_avg = alpha * grad_avg + (1 - alpha) * g
            avg = np.sqrt(square_avg - grad_avg ** 2) + eps
        else:
            avg = np.sqrt(square_avg) + eps
        if momentum > 0:
            buf = momentum * buf + g / avg
            p = p - lr * buf
        else:
            p = p - lr * g / avg
        out.append(p)
    return out


@pytest.mark.parametrize("momentum, centered, weight_decay", [
    (0.0, False, 0.0), (0.9, False, 0.0), (0.0, True, 0.0), (0.7, True, 0.1), (0.5, False, 0.05)])
def test_rmsprop_matches_hand_computation(momentum, centered, weight_decay):
    options = dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=weight_decay, momentum=momentum,
                   centered=centered)
    got = run(optim.RMSprop, **options)
    for t, expected in enumerate(rmsprop_by_hand(**options)):
        np.testing.assert_allclose(got[t], expected, rtol=1e-12, err_msg=f"step {t + 1}")


def test_rmsprop_defaults_are_torchs():
    opt = optim.RMSprop([tg.ones(1, requires_grad=True)])
    assert opt.defaults == dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                                centered=False)
    got = run(optim.RMSprop, steps=1)
    # first step from zero state: p - lr * g / (sqrt((1 - alpha) g^2) + eps)
    g = GRADS[0]
    np.testing.assert_allclose(got[0], START - 1e-2 * g / (np.sqrt(0.01 * g * g) + 1e-8))


def test_rmsprop_lowers_a_simple_loss():
    tg.manual_seed(1)
    w = tg.randn(5, requires_grad=True)
    target = tg.tensor(np.linspace(-1, 1, 5).astype(np.float32))
    opt = optim.RMSprop([w], lr=0.05, momentum=0.5, centered=True)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = ((w - target) ** 2).sum()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.01 * losses[0]


# -- every hyperparameter is checked where it is set -----------------------------------------

def param():
    return tg.ones(2, requires_grad=True)


BAD_NUMBERS = [(float("nan"), ValueError), (float("inf"), ValueError), (-1, ValueError),
               ("0.1", TypeError), (True, TypeError), (None, TypeError), ([0.1], TypeError)]

OPTIMIZER_OPTIONS = [(optim.SGD, "lr"), (optim.SGD, "momentum"), (optim.SGD, "weight_decay"),
                     (optim.SGD, "dampening"), (optim.Adam, "lr"), (optim.Adam, "eps"),
                     (optim.Adam, "weight_decay"), (optim.AdamW, "lr"), (optim.AdamW, "eps"),
                     (optim.RMSprop, "lr"), (optim.RMSprop, "alpha"), (optim.RMSprop, "eps"),
                     (optim.RMSprop, "weight_decay"), (optim.RMSprop, "momentum")]


@pytest.mark.parametrize("cls, name", OPTIMIZER_OPTIONS)
@pytest.mark.parametrize("value, error", BAD_NUMBERS)
def test_bad_hyperparameter_in_the_constructor(cls, name, value, error):
    with pytest.raises(error, match=rf"^{cls.__name__}: invalid {name}=.*{name} must be"):
        cls([param()], **{name: value})


@pytest.mark.parametrize("cls, name", OPTIMIZER_OPTIONS)
def test_bad_hyperparameter_in_add_param_group_and_load_state_dict(cls, name):
    opt = cls([param()])
    with pytest.raises(ValueError, match=rf"{cls.__name__}: invalid {name}=nan"):
        opt.add_param_group({"params": [param()], name: float("nan")})
    assert len(opt.param_groups) == 1  # nothing was added
    state = opt.state_dict()
    before = dict(opt.param_groups[0])
    state["param_groups"][0][name] = -1.0
    with pytest.raises(ValueError, match=rf"{cls.__name__}: invalid {name}=-1.0"):
        opt.load_state_dict(state)
    assert opt.param_groups[0] == before  # all or nothing


@given(lr=st.one_of(st.floats(max_value=-1e-300), st.sampled_from([math.nan, math.inf, -math.inf]),
                    st.text(max_size=3), st.booleans(), st.none()))
def test_any_bad_lr_is_refused_by_every_optimizer(lr):
    for cls in (optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop):
        with pytest.raises((ValueError, TypeError), match=rf"{cls.__name__}: invalid lr="):
            cls([param()], lr=lr)


@given(lr=st.floats(0, 10), momentum=st.floats(0, 10), wd=st.floats(0, 10))
def test_good_hyperparameters_are_accepted_as_floats(lr, momentum, wd):
    opt = optim.SGD([param()], lr=lr, momentum=momentum, weight_decay=wd)
    group = opt.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (lr, momentum, wd)
    assert all(type(group[k]) is float for k in ("lr", "momentum", "weight_decay"))


@pytest.mark.parametrize("betas", [(1.0, 0.999), (0.9, 1.0), (-0.1, 0.9), (0.9, math.nan),
                                   (0.9, 1.5)])
def test_bad_betas(betas):
    index = 1 if betas[0] == 0.9 else 0
    for cls in (optim.Adam, optim.AdamW):
        with pytest.raises(ValueError, match=rf"{cls.__name__}: invalid beta{index + 1}="):
            cls([param()], betas=betas)
    with pytest.raises(TypeError, match="betas must be a pair"):
        optim.Adam([param()], betas=(0.9,))
    with pytest.raises(TypeError, match="betas must be a pair"):
        optim.Adam([param()], betas="ab")


def test_flags_and_nesterov_rules():
    with pytest.raises(TypeError, match="SGD: invalid nesterov='yes'"):
        optim.SGD([param()], momentum=0.9, nesterov="yes")
    with pytest.raises(TypeError, match="RMSprop: invalid centered=1"):
        optim.RMSprop([param()], centered=1)
    with pytest.raises(ValueError, match="nesterov momentum needs momentum > 0 and dampening"):
        optim.SGD([param()], momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match="SGD: invalid dampening=2"):
        optim.SGD([param()], momentum=0.9, dampening=2)


def test_load_state_dict_refuses_another_optimizers_state():
    p = param()
    adamw = optim.AdamW([p])
    p.grad = tg.ones(2)
    adamw.step()
    sgd = optim.SGD([p], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: group 0 .* has no "
                                         r"\['dampening', 'momentum', 'nesterov'\]"):
        sgd.load_state_dict(adamw.state_dict())
    sgd.step()
    state = sgd.state_dict()
    state["param_groups"][0].update(betas=(0.9, 0.999), eps=1e-8)  # disguised as Adam's groups
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: .* buffers \['momentum_buffer'\]"):
        optim.Adam([p]).load_state_dict(state)


SCHEDULER_BAD = [
    (lambda o, v: lr_scheduler.StepLR(o, step_size=v), "step_size", [0, 2.5, "3", True]),
    (lambda o, v: lr_scheduler.StepLR(o, 2, gamma=v), "gamma", [0.0, -1, math.nan, math.inf]),
    (lambda o, v: lr_scheduler.CosineAnnealingLR(o, T_max=v), "T_max", [0, -3, 2.0]),
    (lambda o, v: lr_scheduler.CosineAnnealingLR(o, 5, eta_min=v), "eta_min", [-1, math.nan]),
    (lambda o, v: lr_scheduler.CosineAnnealingLR(o, 5, warmup_steps=v), "warmup_steps",
     [-1, 5, 1.5]),
    (lambda o, v: lr_scheduler.StepLR(o, 2, last_epoch=v), "last_epoch", [-2, 0.5]),
    (lambda o, v: lr_scheduler.ReduceLROnPlateau(o, factor=v), "factor",
     [0.0, 1.0, 1.5, -0.5, math.nan, "0.5"]),
    (lambda o, v: lr_scheduler.ReduceLROnPlateau(o, patience=v), "patience", [-1, 2.5, None]),
    (lambda o, v: lr_scheduler.ReduceLROnPlateau(o, cooldown=v), "cooldown", [-1, 0.5]),
    (lambda o, v: lr_scheduler.ReduceLROnPlateau(o, threshold=v), "threshold", [-1e-4, math.inf]),
    (lambda o, v: lr_scheduler.ReduceLROnPlateau(o, min_lr=v), "min_lr", [-1e-9, math.nan]),
    (lambda o, v: lr_scheduler.ReduceLROnPlateau(o, eps=v), "eps", [-1.0, math.nan]),
]


@pytest.mark.parametrize("make, name, values", SCHEDULER_BAD,
                         ids=[f"{name}" for _, name, _ in SCHEDULER_BAD])
def test_bad_scheduler_settings(make, name, values):
    for value in values:
        with pytest.raises((ValueError, TypeError), match=rf": invalid {name}="):
            make(sgd(), value)


def test_scheduler_load_state_dict_is_checked_and_all_or_nothing():
    s = lr_scheduler.ReduceLROnPlateau(sgd(), factor=0.5, patience=3)
    saved = s.state_dict()
    with pytest.raises(ValueError, match="invalid factor=1.5"):
        s.load_state_dict({**saved, "factor": 1.5, "patience": 7})
    assert s.patience == 3 and s.factor == 0.5
    with pytest.raises(ValueError, match="best must be a number"):
        s.load_state_dict({**saved, "best": math.nan})
    t = lr_scheduler.StepLR(sgd(), step_size=2)
    with pytest.raises(TypeError, match="invalid step_size=2.5"):
        t.load_state_dict({**t.state_dict(), "step_size": 2.5})
    with pytest.raises(ValueError, match="invalid initial_lr=nan"):
        t.load_state_dict({**t.state_dict(), "base_lrs": [math.nan]})
    assert t.step_size == 2 and t.base_lrs == [1.0]
    with pytest.raises(TypeError, match="expected a dict"):
        t.load_state_dict([("step_size", 3)])


def test_a_user_optimizer_without_lr_still_works():
    class Halve(optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, dict(factor=0.5))

        def step(self):
            for group in self.param_groups:
                for p in group["params"]:
                    p.data *= group["factor"]

    p = tg.ones(2, requires_grad=True)
    Halve([p]).step()
    np.testing.assert_array_equal(p.numpy(), [0.5, 0.5])
