"""nn: every layer's forward against a NumPy reference and its gradients against gradcheck;
Module bookkeeping (registration, modes, state_dict), initialisations and clip_grad_norm_."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_lite as tg
from tinygrad_lite import nn
from tinygrad_lite.nn.utils import functional_call
from tinygrad_lite.testing import gradcheck

F64 = np.float64


def check_module_gradients(module, *inputs, atol=1e-5, rtol=1e-3):
    """gradcheck of ``module(*inputs)`` with respect to the inputs that require grad and every
    parameter of the module (swapped in through functional_call)."""
    names = [name for name, _ in module.named_parameters()]
    params = [p for _, p in module.named_parameters()]
    n_in = len(inputs)

    def fn(*tensors):
        return functional_call(module, dict(zip(names, tensors[n_in:])), *tensors[:n_in])

    return gradcheck(fn, list(inputs) + params, atol=atol, rtol=rtol)


def np_layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def np_softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def np_attention(x, mha, causal):
    """Multi-head self-attention written out in NumPy from the layer's weights."""
    w, b = mha.in_proj_weight.numpy(), mha.in_proj_bias.numpy()
    bsz, t, e = x.shape
    h, d = mha.num_heads, mha.head_dim
    qkv = x @ w.T + b
    q, k, v = (qkv[..., i * e:(i + 1) * e].reshape(bsz, t, h, d).transpose(0, 2, 1, 3)
               for i in range(3))
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d)
    if causal:
        scores = np.where(np.triu(np.ones((t, t), bool), 1), -np.inf, scores)
    out = (np_softmax(scores) @ v).transpose(0, 2, 1, 3).reshape(bsz, t, e)
    return out @ mha.out_proj.weight.numpy().T + mha.out_proj.bias.numpy()


@pytest.fixture(autouse=True)
def _seed():
    tg.manual_seed(0)


def randn(*shape, requires_grad=False):
    return tg.Tensor(np.random.default_rng(sum(shape) + len(shape)).standard_normal(shape),
                     requires_grad=requires_grad)


# -- layers: forward against NumPy, gradients against finite differences ----------------------

def test_linear_forward_init_and_gradients():
    layer = nn.Linear(4, 3, dtype=F64)
    bound = 1 / math.sqrt(4)
    assert np.all(np.abs(layer.weight.numpy()) <= bound) and np.all(np.abs(layer.bias.numpy()) <= bound)
    x = randn(2, 5, 4, requires_grad=True)
    expected = x.numpy() @ layer.weight.numpy().T + layer.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-12)
    assert check_module_gradients(layer, x)
    no_bias = nn.Linear(4, 3, bias=False, dtype=F64)
    assert no_bias.bias is None and len(list(no_bias.parameters())) == 1
    np.testing.assert_allclose(no_bias(x).numpy(), x.numpy() @ no_bias.weight.numpy().T)


def test_linear_init_is_reproducible_with_manual_seed():
    tg.manual_seed(123)
    a = nn.Linear(8, 8)
    tg.manual_seed(123)
    b = nn.Linear(8, 8)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    assert a.weight.dtype == np.float32


def test_embedding_forward_and_gradient_with_repeated_ids():
    emb = nn.Embedding(5, 3, dtype=F64)
    ids = np.array([[0, 2, 2], [4, 0, 2]])
    np.testing.assert_array_equal(emb(ids).numpy(), emb.weight.numpy()[ids])
    assert check_module_gradients(emb, tg.tensor(ids))
    big = nn.Embedding(200, 50)
    assert abs(big.weight.numpy().std() - 1.0) < 0.05  # N(0, 1) init


def test_layer_norm_forward_and_gradients():
    ln = nn.LayerNorm(6, dtype=F64)
    with tg.no_grad():
        ln.weight.copy_(np.linspace(0.5, 1.5, 6))
        ln.bias.copy_(np.linspace(-1, 1, 6))
    x = randn(3, 6, requires_grad=True)
    np.testing.assert_allclose(ln(x).numpy(), np_layer_norm(x.numpy(), ln.weight.numpy(),
                                                            ln.bias.numpy()), rtol=1e-10)
    assert check_module_gradients(ln, x)


def test_dropout_train_and_eval():
    drop = nn.Dropout(0.25)
    x = tg.ones(200, 100)
    y = drop(x).numpy()
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    drop.eval()
    assert drop(x) is x or np.array_equal(drop(x).numpy(), x.numpy())
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(1.5)


@pytest.mark.parametrize("layer, reference", [
    (nn.ReLU(), lambda v: np.maximum(v, 0)),
    (nn.Tanh(), np.tanh),
    (nn.GELU(), lambda v: v * 0.5 * (1 + np.vectorize(math.erf)(v / math.sqrt(2)))),
    (nn.GELU("tanh"), lambda v: 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi)
                                                       * (v + 0.044715 * v ** 3)))),
])
def test_activations(layer, reference):
    x = randn(4, 5, requires_grad=True)
    np.testing.assert_allclose(layer(x).numpy(), reference(x.numpy()), rtol=1e-7, atol=1e-12)
    assert gradcheck(layer, [x])


def test_losses_against_numpy():
    pred, target = randn(6, requires_grad=True), randn(6) * 0.5
    np.testing.assert_allclose(nn.MSELoss()(pred, target).item(),
                               np.mean((pred.numpy() - target.numpy()) ** 2))
    assert nn.MSELoss("sum")(pred, target).item() == pytest.approx(
        np.sum((pred.numpy() - target.numpy()) ** 2))
    logits, labels = randn(4, 5, requires_grad=True), np.array([0, 3, 4, 1])
    logp = logits.numpy() - np.log(np.exp(logits.numpy()).sum(1, keepdims=True))
    np.testing.assert_allclose(nn.CrossEntropyLoss()(logits, labels).item(),
                               -logp[np.arange(4), labels].mean(), rtol=1e-10)
    assert gradcheck(lambda z: nn.CrossEntropyLoss()(z, labels), [logits])


# -- attention ------------------------------------------------------------------------------

@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_attention_matches_numpy(causal):
    mha = nn.MultiHeadAttention(8, 2, causal=causal, dtype=F64)
    with tg.no_grad():  # non-zero biases so the reference checks them too
        nn.init.normal_(mha.in_proj_bias, 0, 0.1)
        nn.init.normal_(mha.out_proj.bias, 0, 0.1)
    x = randn(2, 5, 8)
    np.testing.assert_allclose(mha(x).numpy(), np_attention(x.numpy(), mha, causal), rtol=1e-9,
                               atol=1e-12)
    out, weights = mha(x, need_weights=True)
    assert weights.shape == (2, 2, 5, 5)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0)
    if causal:
        assert np.all(weights.numpy()[..., np.triu(np.ones((5, 5), bool), 1)] == 0)


def test_multi_head_attention_gradients():
    mha = nn.MultiHeadAttention(4, 2, causal=True, dtype=F64)
    assert check_module_gradients(mha, randn(2, 3, 4, requires_grad=True))


def test_cross_attention_and_masks():
    mha = nn.MultiHeadAttention(4, 2, dtype=F64)
    q, kv = randn(2, 3, 4, requires_grad=True), randn(2, 6, 4, requires_grad=True)
    assert mha(q, kv, kv).shape == (2, 3, 4)
    assert check_module_gradients(mha, q, kv, kv)
    # A boolean mask that hides the last key changes nothing if that key's value is changed.
    mask = np.zeros((3, 6), bool)
    mask[:, -1] = True
    changed = kv.numpy().copy()
    changed[:, -1] += 10
    np.testing.assert_allclose(mha(q, kv, kv, attn_mask=mask).numpy(),
                               mha(q, tg.tensor(changed), tg.tensor(changed), attn_mask=mask).numpy(),
                               atol=1e-12)
    # An additive float mask of -inf is the same as the boolean one.
    additive = np.where(mask, -np.inf, 0.0)
    np.testing.assert_allclose(mha(q, kv, kv, attn_mask=additive).numpy(),
                               mha(q, kv, kv, attn_mask=mask).numpy())


@pytest.mark.parametrize("layer", ["attention", "block"])
def test_causal_mask_hides_the_future(layer):
    """Changing token t+1 (and later) leaves every output at positions <= t unchanged."""
    module = (nn.MultiHeadAttention(8, 2, causal=True) if layer == "attention"
              else nn.TransformerBlock(8, 2))
    x = np.random.default_rng(1).standard_normal((2, 6, 8)).astype(np.float32)
    base = module(tg.tensor(x)).numpy()
    for t in range(5):
        changed = x.copy()
        changed[:, t + 1:] = np.random.default_rng(t).standard_normal(changed[:, t + 1:].shape)
        out = module(tg.tensor(changed)).numpy()
        np.testing.assert_allclose(out[:, :t + 1], base[:, :t + 1], rtol=1e-5, atol=1e-6)
        assert not np.allclose(out[:, t + 1:], base[:, t + 1:])
    # Without the mask the future does leak into the past.
    plain = nn.MultiHeadAttention(8, 2)
    changed = x.copy()
    changed[:, -1] += 1
    assert not np.allclose(plain(tg.tensor(changed)).numpy()[:, 0], plain(tg.tensor(x)).numpy()[:, 0])


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_layer_forward_and_gradients(norm_first):
    layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0, norm_first=norm_first,
                                       dtype=F64)
    x = randn(2, 3, 4, requires_grad=True)
    xn = x.numpy()
    ffn = lambda h: np.maximum(h @ layer.ffn[0].weight.numpy().T + layer.ffn[0].bias.numpy(), 0) \
        @ layer.ffn[3].weight.numpy().T + layer.ffn[3].bias.numpy()
    ln = lambda h, m: np_layer_norm(h, m.weight.numpy(), m.bias.numpy())
    if norm_first:
        h = xn + np_attention(ln(xn, layer.ln1), layer.self_attn, False)
        expected = h + ffn(ln(h, layer.ln2))
    else:
        h = ln(xn + np_attention(xn, layer.self_attn, False), layer.ln1)
        expected = ln(h + ffn(h), layer.ln2)
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-9, atol=1e-12)
    assert check_module_gradients(layer, x)


def test_dropout_in_blocks_is_off_in_eval_mode():
    block = nn.TransformerBlock(8, 2, dropout=0.5)
    x = tg.randn(2, 4, 8)
    assert not np.allclose(block(x).numpy(), block(x).numpy())  # training: random
    block.eval()
    np.testing.assert_array_equal(block(x).numpy(), block(x).numpy())


def test_positional_encodings():
    pe = nn.SinusoidalPositionalEncoding(6, max_len=10, dtype=F64)
    x = tg.zeros(1, 4, 6, dtype=F64)
    table = pe(x).numpy()[0]
    for pos in range(4):
        for i in range(3):
            angle = pos / 10000 ** (2 * i / 6)
            assert table[pos, 2 * i] == pytest.approx(math.sin(angle))
            assert table[pos, 2 * i + 1] == pytest.approx(math.cos(angle))
    assert "pe" not in pe.state_dict() and list(pe.parameters()) == []
    learned = nn.LearnedPositionalEncoding(6, max_len=5, dtype=F64)
    x = randn(2, 3, 6, requires_grad=True)
    np.testing.assert_allclose(learned(x).numpy(), x.numpy() + learned.weight.numpy()[:3])
    assert check_module_gradients(learned, x)
    with pytest.raises(ValueError, match="longer than max_len=5"):
        learned(tg.zeros(1, 6, 6, dtype=F64))


# -- Module bookkeeping ---------------------------------------------------------------------

class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.act = nn.ReLU()
        self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Dropout(0.1)])
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))
        self.note = "not registered"

    def forward(self, x):
        h = self.blocks[1](self.blocks[0](self.act(self.fc1(x))))
        return h * self.scale


def test_module_registers_parameters_and_children():
    m = TwoLayer()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "fc1.weight", "fc1.bias", "blocks.0.weight", "blocks.0.bias"]
    assert [n for n, _ in m.named_children()] == ["fc1", "act", "blocks"]
    assert len(list(m.modules())) == 6
    assert m.num_parameters() == 1 + 16 + 20
    m.eval()
    assert all(not mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())
    text = repr(m)
    assert "(fc1): Linear(in_features=3, out_features=4, bias=True)" in text and "37" in text


def test_module_zero_grad_and_freezing():
    m = TwoLayer()
    m(tg.randn(2, 3)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    m.fc1.requires_grad_(False)
    m(tg.randn(2, 3)).sum().backward()
    assert m.fc1.weight.grad is None and m.blocks[0].weight.grad is not None


def test_shared_parameters_are_listed_once():
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    seq.append(seq[0])
    assert len(list(seq.parameters())) == 2


def test_forgetting_super_init_gives_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)
    with pytest.raises(AttributeError, match="super\\(\\).__init__\\(\\)"):
        Broken()


def test_state_dict_round_trip():
    a, b = TwoLayer(), TwoLayer()
    x = tg.randn(2, 3)
    a.eval(), b.eval()
    assert not np.allclose(a(x).numpy(), b(x).numpy())
    state = a.state_dict()
    assert list(state) == [n for n, _ in a.named_parameters()]
    weight_before = b.fc1.weight
    result = b.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert b.fc1.weight is weight_before  # loaded in place: optimizers keep working
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    state["fc1.weight"][:] = 0  # the state dict is a copy
    assert not np.all(a.fc1.weight.numpy() == 0)


def test_load_state_dict_names_every_bad_key():
    m = TwoLayer()
    state = m.state_dict()
    del state["fc1.bias"]
    state["extra.weight"] = np.zeros(3)
    state["blocks.0.weight"] = np.zeros((5, 4), np.float32)
    with pytest.raises(ValueError) as err:
        m.load_state_dict(state)
    message = str(err.value)
    assert "fc1.bias" in message and "extra.weight" in message
    assert "'blocks.0.weight': shape (5, 4) in the state dict, (4, 4) in the model" in message
    state["blocks.0.weight"] = np.zeros((4, 4), np.float32)
    result = m.load_state_dict(state, strict=False)
    assert result.missing_keys == ["fc1.bias"] and result.unexpected_keys == ["extra.weight"]
    assert np.all(m.blocks[0].weight.numpy() == 0)
    state["scale"] = np.ones(1, dtype=np.int64)
    with pytest.raises(ValueError, match="'scale': dtype int64"):
        m.load_state_dict(state, strict=False)


def test_sequential_and_module_list_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[1], nn.Tanh) and len(seq[:2]) == 2
    x = tg.randn(4, 2)
    np.testing.assert_allclose(seq(x).numpy(), seq[2](seq[1](seq[0](x))).numpy())
    with pytest.raises(TypeError, match="Sequential: '1' must be a Module, got function"):
        nn.Sequential(nn.Linear(2, 2), lambda v: v)
    with pytest.raises(TypeError, match="ModuleList: '0' must be a Module, got int"):
        nn.ModuleList([3])


# -- bad input ------------------------------------------------------------------------------

def test_layers_refuse_bad_input_with_clear_errors():
    with pytest.raises(ValueError, match=r"in_features=4, got input of shape \(2, 5\)"):
        nn.Linear(4, 3)(tg.zeros(2, 5))
    with pytest.raises(TypeError, match="input dtype float64 does not match the layer's dtype "
                                        "float32"):
        nn.Linear(4, 3)(tg.zeros(2, 4, dtype=F64))
    with pytest.raises(ValueError, match=r"embed_dim=8\), got \(2, 8\)"):
        nn.MultiHeadAttention(8, 2)(tg.zeros(2, 8))
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiHeadAttention(6, 4)
    with pytest.raises(TypeError, match="ids must be integers"):
        nn.Embedding(4, 2)(tg.zeros(3))
    with pytest.raises(IndexError, match="id 7 is out of range for 4"):
        nn.Embedding(4, 2)(np.array([7]))
    with pytest.raises(ValueError, match="normalized_shape"):
        nn.LayerNorm(3)(tg.zeros(2, 4))


# -- init and utils -------------------------------------------------------------------------

def test_init_functions():
    w = tg.zeros(300, 200)
    nn.init.xavier_uniform_(w)
    bound = math.sqrt(6 / 500)
    assert np.abs(w.numpy()).max() <= bound and np.abs(w.numpy()).max() > 0.95 * bound
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert w.numpy().std() == pytest.approx(math.sqrt(2 / 200), rel=0.03)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5))  # Linear's default: U(+-1/sqrt(fan_in))
    assert np.abs(w.numpy()).max() <= 1 / math.sqrt(200)
    nn.init.trunc_normal_(w, std=1.0, a=-1.0, b=1.0)
    assert np.abs(w.numpy()).max() <= 1.0
    nn.init.ones_(w)
    assert np.all(w.numpy() == 1)
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.xavier_uniform_(tg.zeros(5))
    tg.manual_seed(7)
    a = nn.init.normal_(tg.zeros(4)).numpy().copy()
    tg.manual_seed(7)
    np.testing.assert_array_equal(a, nn.init.normal_(tg.zeros(4)).numpy())


def test_clip_grad_norm():
    p1, p2 = tg.zeros(3, requires_grad=True), tg.zeros(2, 2, requires_grad=True)
    g1, g2 = np.array([3.0, 0, 4], np.float32), np.full((2, 2), 6.0, np.float32)
    p1.grad, p2.grad = tg.tensor(g1), tg.tensor(g2)
    total = nn.utils.clip_grad_norm_([p1, p2], max_norm=1.0)
    assert total == pytest.approx(math.sqrt(9 + 16 + 4 * 36))
    clipped = math.sqrt((p1.grad.numpy() ** 2).sum() + (p2.grad.numpy() ** 2).sum())
    assert clipped == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(p1.grad.numpy(), g1 / total, rtol=1e-5)
    # Below the limit nothing changes; the inf-norm is the largest |g|.
    assert nn.utils.clip_grad_norm_([p1, p2], max_norm=5.0) == pytest.approx(1.0, rel=1e-5)
    assert nn.utils.clip_grad_norm_([p1, p2], 5.0, norm_type=math.inf) == pytest.approx(
        6 / total, rel=1e-5)


def test_buffers_persistent_and_not():
    class WithBuffers(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("running", tg.zeros(3))
            self.register_buffer("table", tg.ones(2), persistent=False)

    a, b = WithBuffers(), WithBuffers()
    assert list(a.state_dict()) == ["running"] and len(list(a.buffers())) == 2
    with tg.no_grad():
        a.running.fill_(5.0)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.running.numpy(), 5.0)
    a.running = tg.full(3, 2.0)  # replacing a buffer keeps it registered
    assert a.state_dict()["running"].tolist() == [2.0, 2.0, 2.0]
    with pytest.raises(TypeError, match="cannot assign a Tensor to parameter 'weight'"):
        nn.Linear(2, 2).weight = tg.zeros(2, 2)
    with pytest.raises(KeyError, match="no parameters \\['nope'\\]"):
        functional_call(a, {"nope": tg.zeros(1)})
