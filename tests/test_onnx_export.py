"""ONNX export (tinygrad_lite/onnx): the files pass onnx's full check, and ONNX Runtime computes
what the engine computes -- a trained GPT at every batch size and length from one file (and the
same greedy text), the Transformer regressor, MLPs and a model using every mapped op -- while an
op without a mapping, what a trace cannot see, and bad arguments give clear errors."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import tinygrad_lite as tg
import tinygrad_lite.nn.functional as F
from error_checks import raises
from fresh_python import run_python
from tinygrad_lite import Tensor, nn
from tinygrad_lite.autograd import Function
from tinygrad_lite.models.gpt import GPT, GPTConfig
from tinygrad_lite.onnx import SUPPORTED_OPS, export
from tinygrad_lite.ops.movement import gather
from tinygrad_lite.optim import AdamW
from tinygrad_lite.text import get_batch
from tinygrad_lite.trace import trace_forward

REPO = Path(__file__).resolve().parent.parent
CONFIG = GPTConfig(vocab_size=48, context_length=16, d_model=32, num_blocks=2, num_heads=4,
                   dropout=0.1)
GPT_AXES = {"idx": {0: "batch", 1: "time"}, "logits": {0: "batch", 1: "time"}}


def session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def engine_outputs(model, x) -> np.ndarray:
    """The model's output in eval mode without a graph (the mode it had is restored)."""
    was_training = model.training
    model.eval()
    with tg.no_grad():
        out = model(Tensor(x)).data
    model.train(was_training)
    return out


@pytest.fixture(scope="module")
def trained_gpt():
    """A small GPT after 8 AdamW steps on random tokens (so its weights are not the init's)."""
    tg.manual_seed(0)
    model = GPT(CONFIG)
    optimizer = AdamW(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, CONFIG.vocab_size, 2_000)
    for _ in range(8):
        _, loss = model(*get_batch(tokens, 4, CONFIG.context_length, rng))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


@pytest.fixture(scope="module")
def gpt_file(trained_gpt, tmp_path_factory) -> Path:
    """The trained GPT exported once, traced at batch 2 x 5 tokens, batch and time dynamic."""
    path = tmp_path_factory.mktemp("onnx") / "gpt.onnx"
    example = np.random.default_rng(1).integers(0, CONFIG.vocab_size, (2, 5))
    assert trained_gpt.training
    export(trained_gpt, Tensor(example), path, input_names=["idx"], output_names=["logits"],
           dynamic_axes=GPT_AXES)
    assert trained_gpt.training and all(m.training for m in trained_gpt.modules())
    return path


# -- the GPT ---------------------------------------------------------------------------------

def test_the_gpt_file_passes_the_full_check_with_named_weights_and_dynamic_axes(trained_gpt,
                                                                               gpt_file):
    model = onnx.load(str(gpt_file))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17
    (idx,), (logits,) = model.graph.input, model.graph.output
    assert idx.type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert [d.dim_param for d in idx.type.tensor_type.shape.dim] == ["batch", "time"]
    dims = logits.type.tensor_type.shape.dim
    assert [dims[0].dim_param, dims[1].dim_param, dims[2].dim_value] == ["batch", "time", 48]
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    state = dict(trained_gpt.named_parameters())
    assert set(weights) == set(state) | {"position_encoding.pe"}
    for name, p in state.items():  # the trained values, float32 as in the model
        assert weights[name].dtype == np.float32 and np.array_equal(weights[name], p.data)
    assert not any(n.op_type == "Dropout" for n in model.graph.node)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("length", [1, 7, CONFIG.context_length])
def test_onnxruntime_logits_equal_the_engines_at_every_size_from_one_file(trained_gpt, gpt_file,
                                                                           batch, length):
    ids = np.random.default_rng(batch * 100 + length).integers(0, CONFIG.vocab_size,
                                                              (batch, length))
    (logits,) = session(gpt_file).run(["logits"], {"idx": ids})
    assert logits.shape == (batch, length, CONFIG.vocab_size) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, engine_outputs(trained_gpt, ids), rtol=1e-5, atol=1e-5)


def test_twenty_greedy_tokens_from_onnxruntime_are_the_engines(trained_gpt, gpt_file):
    """ONNX Runtime fed the growing sequence (cropped to the context: 4 + 20 > 16 tokens)."""
    prompt = np.random.default_rng(5).integers(0, CONFIG.vocab_size, (1, 4))
    runner, ids = session(gpt_file), prompt
    for _ in range(20):
        (logits,) = runner.run(None, {"idx": ids[:, -CONFIG.context_length:]})
        ids = np.concatenate([ids, logits[:, -1].argmax(-1)[:, None]], axis=1)
    expected = trained_gpt.generate(prompt, 20, temperature=0)
    assert ids.shape == (1, 24) and np.array_equal(ids, expected)


# -- other models ------------------------------------------------------------------------------

def sequence_regressor():
    spec = importlib.util.spec_from_file_location(
        "transformer_regression", REPO / "examples" / "transformer_regression.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SequenceRegressor(n_features=10, seq_len=5)


def mlp():
    return nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 32), nn.GELU(),
                         nn.Dropout(0.5), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 2))


@pytest.mark.parametrize("make, features", [(sequence_regressor, (5, 10)), (mlp, (3,))],
                         ids=["transformer_regressor", "mlp"])
def test_the_regressor_and_an_mlp_export_with_a_dynamic_batch_and_agree(make, features,
                                                                        tmp_path):
    tg.manual_seed(1)
    model = make()
    rng = np.random.default_rng(2)
    example = rng.standard_normal((4, *features)).astype(np.float32)
    export(model, Tensor(example), tmp_path / "m.onnx", dynamic_axes={"x": [0]})
    onnx.checker.check_model(onnx.load(str(tmp_path / "m.onnx")), full_check=True)
    runner = session(tmp_path / "m.onnx")
    assert [i.name for i in runner.get_inputs()] == ["x"]  # forward's parameter name
    for batch in (1, 3, 8):
        x = rng.standard_normal((batch, *features)).astype(np.float32)
        (out,) = runner.run(["output"], {"x": x})
        np.testing.assert_allclose(out, engine_outputs(model, x), rtol=1e-5, atol=1e-5)


def test_without_dynamic_axes_the_shapes_are_fixed(tmp_path):
    tg.manual_seed(2)
    model = mlp()
    export(model, tg.randn(4, 3), tmp_path / "m.onnx", input_names=["features"])
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [4, 3]
    assert [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim] == [4, 2]


class TwoInTwoOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3)

    def forward(self, a, b):
        hidden = self.linear(a) * b
        return hidden.sum(-1), hidden


def test_two_inputs_and_two_outputs_get_forwards_names_and_numbered_outputs(tmp_path):
    tg.manual_seed(4)
    model, a, b = TwoInTwoOut(), tg.randn(2, 3), tg.randn(1, 3)
    export(model, (a, b), tmp_path / "m.onnx", dynamic_axes={"a": [0], "output_1": {0: "rows"}})
    runner = session(tmp_path / "m.onnx")
    assert [i.name for i in runner.get_inputs()] == ["a", "b"]
    assert [o.name for o in runner.get_outputs()] == ["output_0", "output_1"]
    assert runner.get_inputs()[0].shape == ["a_dynamic_axes_1", 3]
    assert runner.get_outputs()[1].shape == ["rows", 3]
    a = np.random.default_rng(4).standard_normal((5, 3)).astype(np.float32)
    for out, expected in zip(runner.run(None, {"a": a, "b": b.data}),
                             model(Tensor(a), b)):
        np.testing.assert_allclose(out, expected.data, rtol=1e-6, atol=1e-6)


class EveryOp(nn.Module):
    """Every mapped op at least once, with sizes that follow a dynamic batch (n) and length
    (t): reshapes and slices by n, t, n*t and t-1, ints, None, ``...``, a mean over t (1/t), an
    embedding of the second input and a causal mask."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(6, 6)
        self.norm = nn.LayerNorm(6)
        self.table = nn.Embedding(10, 6)

    def forward(self, x, ids):                                        # (n, t, 6), (n, t)
        n, t, _ = x.shape
        h = self.norm(self.linear(x)) + self.table(ids.data)
        a = (h.sigmoid() + h.exp() * 0.1 - (h.abs() + 1).sqrt().log() + h.softplus(2.0, 1.0)
             + h.relu6() + h.hardswish() + h.silu() + h.mish() + h.leaky_relu(0.2)
             + h.clip(-0.5, 0.7) + h.sign() + h.sin() * h.cos() + tg.ones(1) / (h * h + 1)
             + h ** 3 + (h.abs() + 2) ** 0.5 + (2.0 - h) + h / 3.0 + h.maximum(h * 0.5)
             + h.minimum(-h) + F.gelu(h) + h.tanh() + h.relu() + (h ** 2).pow(tg.ones(1)))
        a = a.to(tg.float64).to(tg.float32).clone()
        m = a.mean(-1, keepdim=True) + a.var(-1, keepdim=True) + a.amax(-1, keepdim=True) \
            + a.logsumexp(-1, keepdim=True) + a.mean(1, keepdim=True)          # (n, t, 1)
        scores = (a @ a.transpose(1, 2)).masked_fill(nn.attention.causal_mask(t), -1e9)
        b = scores.softmax(-1) @ a + (a - m).log_softmax(-1) + a.tril() + a.triu(1)
        c = tg.cat([b, b[..., :2]], dim=-1)[:, None, :, 1:5].reshape(n, t, 4) + b[:, :, -4:]
        d = c.permute(2, 0, 1).sum(0) + c.sum(2) + c.expand(2, n, t, 4).mean((0, 3))  # (n, t)
        flat = c.flatten(0, 1)[: n * t]                                       # (n*t, 4)
        picked = gather(c, 2, np.array([[[3]]]))                               # (n, t, 1)
        return (d + flat.reshape(n, t, 4)[:, :, 0] + c[:, -1:, 0] + picked.squeeze(2)
                + x.sum() / n)[:, t - 1:]                                      # (n, 1)


@pytest.mark.parametrize("opset", [17, 18])  # 18: the reductions take their axes as an input
def test_a_model_with_every_mapped_op_agrees_at_other_sizes(opset, tmp_path):
    tg.manual_seed(3)
    model = EveryOp()
    rng = np.random.default_rng(3)
    x, ids = rng.standard_normal((3, 5, 6)).astype(np.float32), rng.integers(0, 10, (3, 5))
    with trace_forward() as recorded:
        model(Tensor(x), Tensor(ids))
    assert {row.op for row in recorded.rows} == set(SUPPORTED_OPS)
    export(model, (Tensor(x), Tensor(ids)), tmp_path / "every.onnx",
           dynamic_axes={"x": {0: "n", 1: "t"}, "ids": {0: "n", 1: "t"}}, opset_version=opset)
    runner = session(tmp_path / "every.onnx")
    model.eval()
    for n, t in [(1, 1), (2, 7), (4, 3)]:
        x, ids = rng.standard_normal((n, t, 6)).astype(np.float32), rng.integers(0, 10, (n, t))
        (out,) = runner.run(None, {"x": x, "ids": ids})
        with tg.no_grad():
            expected = model(Tensor(x), Tensor(ids)).data
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


# -- what cannot be exported, and bad arguments ------------------------------------------------

class Cube(Function):
    """An op of the user's own, without an ONNX mapping."""

    def forward(self, x):
        return x ** 3

    def backward(self, g, out):
        return g * 3 * self.inputs[0] ** 2


class Wrapping(nn.Module):
    """A Linear layer followed by ``then(h, x)``."""

    def __init__(self, then):
        super().__init__()
        self.linear, self.then = nn.Linear(4, 4), then

    def forward(self, x):
        return self.then(self.linear(x), x)


def _add_in_place(h, x):
    h += 1
    return h * 2


def _double_long_inputs(h, x):
    return h * 2 if x.shape[1] > 4 else h


NOT_EXPORTABLE = [
    (lambda h, x: F.cross_entropy(h.reshape(-1, 4), np.zeros(h.shape[0] * h.shape[1], int)),
     "op CrossEntropy (tinygrad_lite.ops.nn, run at"),
    (lambda h, x: Cube.apply(h), f"op Cube ({__name__}, run at"),
    (lambda h, x: h.max(-1)[0], "an array made outside the graph, with NumPy"),  # the argmax
    (_add_in_place, "was changed in place (+=, add_, x[...] = ...) before Mul"),
    (_double_long_inputs, "the model runs different ops at different sizes or values (a Python if"),
]


@pytest.mark.parametrize("then, message", NOT_EXPORTABLE,
                         ids=["loss", "own_op", "argmax", "in_place", "python_branch_on_size"])
def test_what_cannot_be_exported_is_refused_by_name_and_nothing_is_written(then, message,
                                                                           tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"an earlier export")
    with raises(NotImplementedError, "onnx.export", message):
        export(Wrapping(then), tg.randn(2, 5, 4), path, dynamic_axes={"x": {1: "t"}})
    assert path.read_bytes() == b"an earlier export" and len(list(tmp_path.iterdir())) == 1


def test_the_unsupported_op_error_lists_the_supported_ops(tmp_path):
    with raises(NotImplementedError, "has no ONNX mapping; supported: " +
                ", ".join(SUPPORTED_OPS)):
        export(Wrapping(lambda h, x: Cube.apply(h)), tg.randn(2, 4), tmp_path / "m.onnx")


def test_the_docstring_lists_exactly_the_supported_ops():
    listed = export.__doc__.split("Supported ops (``tinygrad_lite.ops``):")[1].split(". Any")[0]
    listed = re.sub(r"\([^)]*\)", "", listed)  # GetItem's note on the indices it takes
    assert {name.strip() for name in listed.split(",")} == set(SUPPORTED_OPS)


BAD_ARGUMENTS = [
    (dict(model=lambda x: x), TypeError, "onnx.export: model must be a tinygrad_lite.nn.Module, "
                                         "got function"),
    (dict(args=[[1.0, 2.0]]), TypeError, "onnx.export: args must be a Tensor (or NumPy array) "
                                         "or a tuple of them"),
    (dict(f=3), TypeError, "onnx.export: f must be a file path"),
    (dict(opset_version=13), ValueError, "onnx.export: opset_version must be in 17.."),
    (dict(opset_version=17.0), TypeError, "onnx.export: opset_version must be an int"),
    (dict(input_names=["a", "b"]), ValueError, "onnx.export: input_names ['a', 'b'] must be 1 "
                                               "names, one per input of the model"),
    (dict(output_names=["y", "y"]), ValueError, "onnx.export: output_names ['y', 'y'] repeat a "
                                                "name"),
    (dict(output_names=["y", "z"]), ValueError, "onnx.export: output_names ['y', 'z'] must be 1 "
                                                "names, one per output"),
    (dict(output_names=["x"]), ValueError, "onnx.export: output_names ['x'] reuse an input name"),
    (dict(output_names="y"), TypeError, "onnx.export: output_names must be a list of non-empty "
                                        "strings"),
    (dict(dynamic_axes={"foo": {0: "batch"}}), ValueError,
     "onnx.export: dynamic_axes names 'foo', which is neither an input (x) nor an output "
     "(output)"),
    (dict(dynamic_axes={"foo": [0]}, output_names=["y"]), ValueError,
     "dynamic_axes names 'foo', which is neither an input (x) nor an output (y)"),
    (dict(dynamic_axes={"x": {2: "batch"}}), ValueError,
     "onnx.export: dynamic_axes['x'] has axis 2, but input 'x' has shape (2, 4)"),
    (dict(dynamic_axes={"x": {0: 7}}), TypeError,
     "onnx.export: dynamic_axes['x'] must be {axis: name} or a list of axes"),
    (dict(dynamic_axes=[0]), TypeError, "onnx.export: dynamic_axes must be a dict"),
]


@pytest.mark.parametrize("change, error, message", BAD_ARGUMENTS,
                         ids=[", ".join(c) + f"-{i}" for i, (c, _, _) in
                              enumerate(BAD_ARGUMENTS)])
def test_bad_arguments_are_refused_with_clear_errors(change, error, message, tmp_path):
    arguments = dict(model=nn.Linear(4, 3), args=tg.randn(2, 4), f=tmp_path / "m.onnx")
    arguments.update(change)
    with raises(error, message):
        export(arguments.pop("model"), arguments.pop("args"), arguments.pop("f"), **arguments)
    assert not (tmp_path / "m.onnx").exists()


def test_importing_tinygrad_lite_does_not_import_onnx():
    result = run_python("import sys, tinygrad_lite, tinygrad_lite.models.gpt, "
                        "tinygrad_lite.nn, tinygrad_lite.train; "
                        "print(sorted(m for m in sys.modules if m.startswith('onnx')))")
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr
