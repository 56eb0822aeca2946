"""PyTorch habits that the engine must honour (issue 9, part 1): the package namespace,
``grad`` returning a tuple, a second backward through a graph that saved nothing, PyTorch's
exception classes, hooks that may not change a gradient's shape or dtype, and torch.nn's module
tree API (ModuleDict, apply, named_modules) as nanoGPT's model.py uses it. Expected values are
computed by hand (PyTorch itself stays optional)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_lite as tg
from fresh_python import run_python
from tinygrad_lite import Tensor, nn


def leaf(a) -> Tensor:
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


# -- the package namespace -------------------------------------------------------------------

def _fresh_python(code: str) -> str:
    """Run ``code`` in a new interpreter (so no test has imported a subpackage yet)."""
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_subpackages_are_attributes_after_import_tinygrad_lite():
    out = _fresh_python(
        "import sys, tinygrad_lite as tg\n"
        "lazy = ['tinygrad_lite.' + m for m in ('nn', 'optim', 'train', 'models', 'text',"
        " 'viz', 'trace')]\n"
        "print([m for m in lazy if m in sys.modules])\n"  # not imported by the package import
        "print(tg.optim.AdamW.__name__, tg.nn.ModuleDict.__name__, tg.optim.lr_scheduler.StepLR"
        ".__name__, tg.data.DataLoader.__name__, tg.testing.gradcheck.__name__,"
        " tg.autograd.grad is tg.grad, tg.kernels.__name__, tg.ops.__name__)\n"
        "print(tg.train.EarlyStopping.__name__, tg.models.GPT.__name__, tg.text.__name__)\n"
        "print(tg.viz.to_dot.__name__, tg.trace.trace_backward.__name__)\n"
        "print(all(n in dir(tg) for n in ('nn', 'optim', 'train', 'models', 'text', 'viz',"
        " 'trace')))\n")
    assert out.splitlines() == [
        "[]",
        "AdamW ModuleDict StepLR DataLoader gradcheck True tinygrad_lite.kernels tinygrad_lite.ops",
        "EarlyStopping GPT tinygrad_lite.text",
        "to_dot trace_backward",
        "True",
    ]


def test_unknown_package_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'optimm'"):
        tg.optimm
    assert not hasattr(tg, "no_such_thing")


# -- grad() always returns a tuple -----------------------------------------------------------

def test_grad_of_a_single_tensor_returns_a_one_tuple():
    x = leaf([1.0, -2.0, 3.0])
    result = tg.grad((x * x).sum(), x)
    assert type(result) is tuple and len(result) == 1
    np.testing.assert_allclose(result[0].numpy(), [2.0, -4.0, 6.0])
    gx, gx_again = tg.grad((x * leaf(2.0)).sum(), [x, x])  # one result per entry, as torch
    np.testing.assert_allclose(gx.numpy(), [2.0, 2.0, 2.0])
    np.testing.assert_allclose(gx_again.numpy(), [2.0, 2.0, 2.0])


# -- a second backward through a graph that saved nothing ------------------------------------

def test_second_backward_through_a_graph_that_saved_nothing_accumulates():
    x = leaf([1.0, 2.0, 3.0])
    z = (x + 1).sum()  # AddScalar and Sum read no values in backward
    z.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0, 1.0])
    z.backward()  # allowed, as in PyTorch: x.grad doubles
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])
    y = x.reshape(3, 1).expand(3, 2)[1:]  # view ops and a slice save shapes only
    w = (y - 2.0).sum() + (x * 3.0).sum()
    x.grad = None
    w.backward()
    w.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * np.array([3.0, 5.0, 5.0]))


def test_second_backward_through_a_node_that_saved_values_still_raises():
    x = leaf([1.0, 2.0])
    y = (x + 1).sum() + (x * x).sum()  # Mul saved x: freed after the first backward
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*Mul"):
        y.backward()
    h = leaf([0.5, 1.5]).exp()  # Exp saved its output
    s = h.sum()
    s.backward()
    with pytest.raises(RuntimeError, match="second time.*Exp.*retain_graph=True"):
        s.backward()


def test_nodes_that_keep_arrays_are_freed():
    x = leaf(np.arange(6.0).reshape(2, 3))
    picked = x[np.array([1, 0, 1])]  # an index array is a saved value (torch saves indices too)
    node = picked._ctx
    assert node.saves_values() and not (x.reshape(6)._ctx.saves_values())
    picked.sum().backward()
    assert node.freed
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 1, 1], [2, 2, 2]])


def test_retain_graph_still_allows_a_second_backward_through_saved_values():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


# -- PyTorch's exception classes -------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: tg.tensor([1, 2], requires_grad=True),
                                  lambda: tg.arange(3).requires_grad_(),
                                  lambda: Tensor(np.array([True]), requires_grad=True)])
def test_requires_grad_on_a_non_float_tensor_is_a_runtime_error(make):
    with pytest.raises(RuntimeError, match="only Tensors of floating point dtype can require "
                                           "gradients"):
        make()


def test_gradient_of_the_wrong_shape_is_a_runtime_error():
    y = leaf([1.0, 2.0, 3.0]) * 2
    with pytest.raises(RuntimeError, match=r"Mismatch in shape.*\(2,\).*\(3,\)"):
        y.backward(gradient=np.ones(2))
    with pytest.raises(RuntimeError, match=r"Mismatch in shape"):
        tg.grad(y, y, grad_outputs=tg.ones(3, 1))


def test_other_autograd_errors_are_runtime_errors():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.grad((x * 2).sum(), tg.ones(2))
    with pytest.raises(RuntimeError, match="allow_unused"):
        tg.grad((x * 2).sum(), [x, leaf([0.0])])
    with pytest.raises(RuntimeError, match="grad_outputs"):
        tg.grad([x * 2, x * 3], x, grad_outputs=[tg.ones(2)])
    with pytest.raises(RuntimeError, match="hook"):
        tg.ones(2).register_hook(lambda g: g)
    with pytest.raises(TypeError, match="callable"):
        x.register_hook("not a function")


# -- hooks may not change a gradient's shape or dtype ----------------------------------------

def test_hook_that_changes_the_shape_raises_naming_the_hook_and_shapes():
    x = leaf([1.0, 2.0, 3.0])

    def widen(g):
        return tg.ones(2, 3, dtype=np.float64)

    x.register_hook(widen)
    with pytest.raises(RuntimeError, match=r"hook '.*widen' has changed the size of value.*"
                                           r"\(3,\).*\(2, 3\)"):
        (x * 2).sum().backward()
    assert x.grad is None  # nothing was stored


def test_hook_that_changes_the_dtype_raises():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: g.to(np.float32))
    with pytest.raises(RuntimeError, match=r"hook .*lambda.* has changed the type of value.*"
                                           r"float64.*float32"):
        (x * 2).sum().backward()


def test_hook_on_an_intermediate_that_changes_the_shape_raises():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.register_hook(lambda g: g.sum())
    with pytest.raises(RuntimeError, match=r"changed the size of value.*\(2,\).*\(\)"):
        y.sum().backward()


def test_hook_keeping_shape_and_dtype_still_replaces_the_gradient():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: g * 10)
    x.register_hook(lambda g: np.asarray(g.numpy() + 1))  # an array of the same shape/dtype
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [21.0, 21.0])


def test_wrong_types_given_to_grad_and_backward_are_type_errors():
    x = leaf([1.0, 2.0])
    y = x * 2
    with pytest.raises(TypeError, match="grad: outputs must be a Tensor"):
        tg.grad(3.0, x)
    with pytest.raises(TypeError, match="grad: inputs must be a Tensor"):
        tg.grad(y.sum(), [x, "x"])
    with pytest.raises(TypeError, match="backward: gradient must be a Tensor.*str"):
        y.backward(gradient="ab")
    y.backward(gradient=[1.0, 0.5])  # a list of numbers of the right shape is fine
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 1.0])


# -- ModuleDict, apply, named_modules (torch.nn's tree API) ----------------------------------

def test_module_dict_is_a_dict_of_registered_modules():
    d = nn.ModuleDict({"enc": nn.Linear(3, 4), "dec": nn.Linear(4, 2)})
    assert len(d) == 2 and list(d) == ["enc", "dec"] and list(d.keys()) == ["enc", "dec"]
    assert "enc" in d and "nope" not in d
    assert d["enc"] is d.enc and list(d.values()) == [d["enc"], d["dec"]]
    assert [k for k, _ in d.items()] == ["enc", "dec"]
    # registered: parameters and state_dict see the entries with "key." prefixes
    assert list(d.state_dict()) == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    assert sum(p.numel() for p in d.parameters()) == 3 * 4 + 4 + 4 * 2 + 2
    d["extra"] = nn.LayerNorm(2)
    d.update([("enc", nn.Linear(3, 4))])  # replacing keeps the position
    d.update(nn.ModuleDict({"more": nn.ReLU()}))
    assert list(d) == ["enc", "dec", "extra", "more"]
    assert d.pop("more").__class__ is nn.ReLU and "more" not in d
    del d["extra"]
    assert list(d) == ["enc", "dec"]
    with pytest.raises(KeyError, match="nope"):
        d["nope"]
    with pytest.raises(TypeError, match="must be a Module"):
        d["x"] = 3
    with pytest.raises(KeyError, match="must not be empty or contain"):
        d["a.b"] = nn.ReLU()
    with pytest.raises(KeyError, match="already exists"):
        d["keys"] = nn.ReLU()  # would hide the method, as torch refuses too
    layer = nn.Linear(2, 2)
    with pytest.raises(KeyError, match="'weight' already exists"):
        layer.add_module("weight", nn.ReLU())
    with pytest.raises(TypeError, match="pair"):
        d.update([nn.ReLU()])
    d.clear()
    assert len(d) == 0 and list(d.parameters()) == []


def test_module_dict_inside_a_model_loads_its_state_dict():
    def model():
        m = nn.Module()
        m.blocks = nn.ModuleDict(dict(a=nn.Linear(2, 2), b=nn.Linear(2, 1)))
        return m
    src, dst = model(), model()
    assert list(src.state_dict()) == ["blocks.a.weight", "blocks.a.bias", "blocks.b.weight",
                                      "blocks.b.bias"]
    dst.load_state_dict(src.state_dict())
    for (name, p), (_, q) in zip(src.named_parameters(), dst.named_parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)


def _tree():
    shared = nn.Linear(2, 2)
    root = nn.Sequential(nn.Linear(2, 2), nn.Sequential(shared, nn.ReLU()), shared)
    return root, shared


def test_named_modules_order_duplicates_memo_and_prefix():
    root, shared = _tree()
    names = [n for n, _ in root.named_modules()]
    assert names == ["", "0", "1", "1.0", "1.1"]  # self first, depth first, shared once
    assert next(iter(root.named_modules()))[1] is root
    assert [n for n, _ in root.named_modules(remove_duplicate=False)] == \
        ["", "0", "1", "1.0", "1.1", "2"]
    assert [n for n, _ in root.named_modules(prefix="model")][:2] == ["model", "model.0"]
    memo = {shared}
    assert [n for n, _ in root.named_modules(memo)] == ["", "0", "1", "1.1"]
    assert root in memo  # memo is updated, as in torch
    assert list(root.modules())[0] is root
    assert [n for n, _ in root.named_children()] == ["0", "1", "2"]
    assert [n for n, _ in root[1].named_children()] == ["0", "1"]
    assert list(root.children())[1] is root[1]


def test_apply_visits_children_first_then_self_and_returns_self():
    root, shared = _tree()
    visited = []
    assert root.apply(visited.append) is root
    # torch order: each child's subtree (children before parent), then the root itself
    assert visited == [root[0], shared, root[1][1], root[1], shared, root]
    with pytest.raises(TypeError, match="callable"):
        root.apply(3)


class _NanoBlock(nn.Module):
    """Just enough of nanoGPT's Block to carry its parameter names."""

    def __init__(self, n_embd):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.c_attn = nn.Linear(n_embd, n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)

    def forward(self, x):
        return x + self.c_proj(self.c_attn(self.ln_1(x)).relu())


class _NanoGPT(nn.Module):
    """nanoGPT's model.py __init__, line for line where it builds and initialises the tree."""

    def __init__(self, vocab_size=11, block_size=8, n_layer=2, n_embd=6):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, n_embd),
            wpe=nn.Embedding(block_size, n_embd),
            drop=nn.Dropout(0.0),
            h=nn.ModuleList([_NanoBlock(n_embd) for _ in range(n_layer)]),
            ln_f=nn.LayerNorm(n_embd),
        ))
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.transformer.drop(self.transformer.wte(idx) +
                                  self.transformer.wpe(tg.arange(t)))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


def test_nanogpt_model_tree_builds_initialises_and_trains():
    tg.manual_seed(0)
    model = _NanoGPT()
    names = [n for n, _ in model.named_parameters()]
    assert names[0] == "transformer.wte.weight" and "lm_head.weight" not in names  # tied once
    assert "transformer.h.1.c_proj.weight" in names
    assert model.transformer.wte.weight is model.lm_head.weight
    # apply(_init_weights) reached every Linear inside the ModuleDict/ModuleList
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module.bias is not None:
            assert not module.bias.numpy().any(), name
    proj = np.concatenate([b.c_proj.weight.numpy().ravel() for b in model.transformer.h])
    attn = np.concatenate([b.c_attn.weight.numpy().ravel() for b in model.transformer.h])
    assert abs(attn.std() - 0.02) < 0.008  # std 0.02, from _init_weights via apply
    assert abs(proj.std() - 0.01) < 0.004  # 0.02 / sqrt(2 * n_layer): the c_proj loop
    modules = dict(model.named_modules())
    assert modules[""] is model and isinstance(modules["transformer.h.0.c_attn"], nn.Linear)
    idx = tg.tensor(np.arange(8).reshape(2, 4) % 11)
    logits = model(idx)  # (2, 4, 11)
    assert logits.shape == (2, 4, 11)
    opt = tg.optim.AdamW(model.parameters(), lr=1e-2)
    first = None
    for _ in range(5):
        loss = tg.nn.functional.cross_entropy(model(idx).reshape(8, 11), idx.reshape(8))
        first = float(loss.numpy()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.numpy()) < first


def test_where_condition_changed_in_place_before_backward_is_caught():
    # Where's backward reads the condition: changing it in place must raise, not give a
    # silently wrong gradient (the bug: Where declared that it reads no input).
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    cond = tg.tensor([True, False, True])
    y = tg.where(cond, x, tg.zeros(3)).sum()
    cond[0] = False
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()
