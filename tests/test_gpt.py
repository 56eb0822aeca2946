"""The tiny GPT (tinygrad_lite/models/gpt.py) and its example scripts, on tiny configurations."""

import importlib.util
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import tinygrad_lite as tg
from tinygrad_lite.models.gpt import GPT, GPTConfig
from tinygrad_lite.models.sampling import sample_next
from tinygrad_lite.train.language_model import load_gpt, resume_gpt, save_gpt_checkpoint
from tinygrad_lite.optim import AdamW
from tinygrad_lite.text import Tokenizer
from tinygrad_lite.train.checkpoint import CheckpointError, load_checkpoint

REPO = Path(__file__).resolve().parent.parent
SHAKESPEARE = REPO / "data" / "tinyshakespeare.txt"
TANG = REPO / "data" / "tang_poems.txt"


def tiny_config(vocab_size=64, **overrides) -> GPTConfig:
    settings = dict(vocab_size=vocab_size, context_length=16, d_model=16, num_blocks=2,
                    num_heads=2, dropout=0.1)
    return GPTConfig(**{**settings, **overrides})


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    """The first ~12k characters of tiny Shakespeare (~3k tokens)."""
    path = tmp_path_factory.mktemp("corpus") / "small.txt"
    path.write_text(SHAKESPEARE.read_text(encoding="utf-8")[:12_000], encoding="utf-8")
    return path


def tiny_train_args(corpus: Path, out_dir: Path, *extra: str) -> list:
    return ["--data", str(corpus), "--vocab", "compact", "--d-model", "16", "--num-blocks", "1",
            "--num-heads", "2", "--context-length", "16", "--batch-size", "4",
            "--eval-interval", "5", "--eval-iters", "2", "--out-dir", str(out_dir),
            "--sample-tokens", "0", "--quiet", *extra]


# -- the model -----------------------------------------------------------------------------------

def test_shapes_through_the_model():
    tg.manual_seed(0)
    model = GPT(tiny_config())
    ids = np.random.default_rng(0).integers(0, 64, (3, 16))
    logits = model(ids)
    assert logits.shape == (3, 16, 64) and logits.dtype == np.float32
    logits, loss = model(ids[:, :5], ids[:, 1:6])  # shorter than the context is fine
    assert logits.shape == (3, 5, 64) and loss.shape == ()
    assert model.hidden_states(ids).shape == (3, 16, 16)


def test_bad_inputs_name_the_problem():
    model = GPT(tiny_config())
    with pytest.raises(ValueError, match="more than context_length=16"):
        model(np.zeros((1, 17), dtype=np.int64))
    with pytest.raises(ValueError, match="outside the vocabulary 0..63"):
        model(np.array([[1, 64]]))
    with pytest.raises(ValueError, match=r"shape \(batch, time\)"):
        model(np.zeros(5, dtype=np.int64))
    with pytest.raises(ValueError, match="divisible by num_heads"):
        GPTConfig(vocab_size=10, d_model=18, num_heads=4)


def test_changing_a_later_token_never_changes_earlier_logits():
    tg.manual_seed(1)
    model = GPT(tiny_config()).eval()
    ids = np.random.default_rng(1).integers(0, 64, (2, 16))
    reference = model(ids).data
    for t in (3, 9, 15):
        changed = ids.copy()
        changed[:, t] = (changed[:, t] + 7) % 64
        logits = model(changed).data
        np.testing.assert_allclose(logits[:, :t], reference[:, :t], rtol=0, atol=1e-6)
        assert not np.allclose(logits[:, t], reference[:, t])  # position t itself does change


def test_loss_at_initialisation_is_near_ln_vocab_size():
    tg.manual_seed(2)
    vocab = 500
    model = GPT(tiny_config(vocab_size=vocab)).eval()
    ids = np.random.default_rng(2).integers(0, vocab, (8, 16))
    _, loss = model(ids, np.roll(ids, -1, axis=1))
    # Small random logits: slightly above ln V (their variance adds about var/2).
    assert abs(loss.item() - math.log(vocab)) < 0.3


def test_a_few_dozen_steps_drive_the_loss_down(small_corpus):
    tokenizer = Tokenizer.from_text(small_corpus.read_text(), "compact")
    tokens = tokenizer.encode(small_corpus.read_text())
    tg.manual_seed(3)
    model = GPT(tiny_config(vocab_size=tokenizer.vocab_size, dropout=0.0))
    optimizer = AdamW(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(3)
    starts = rng.integers(0, len(tokens) - 17, 8)  # a fixed batch: the loss must fall on it
    x = np.stack([tokens[s:s + 16] for s in starts])
    y = np.stack([tokens[s + 1:s + 17] for s in starts])
    losses = []
    for _ in range(40):
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::8]


def test_generation_is_deterministic_for_a_seed_and_crops_the_context():
    tg.manual_seed(4)
    model = GPT(tiny_config())
    prompt = np.array([[1, 2, 3]])
    a = model.generate(prompt, 30, temperature=1.0, top_k=10, rng=np.random.default_rng(7))
    b = model.generate(prompt, 30, temperature=1.0, top_k=10, rng=np.random.default_rng(7))
    assert a.shape == (1, 33) and np.array_equal(a, b)  # 33 > context 16: cropping works
    assert np.array_equal(a[:, :3], prompt)
    assert model.training  # generate restores the mode it found


def test_greedy_generation_equals_top_k_1():
    tg.manual_seed(5)
    model = GPT(tiny_config())
    prompt = np.array([[5, 6]])
    greedy = model.generate(prompt, 10, temperature=0.0)
    top1 = model.generate(prompt, 10, top_k=1, rng=np.random.default_rng(0))
    assert np.array_equal(greedy, top1)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(temperature=float("nan")), ValueError, "generate: temperature must be a finite number "
                                                 r">= 0 \(0: greedy\), got nan"),
    (dict(temperature=float("inf")), ValueError, "got inf"),
    (dict(temperature=-0.5), ValueError, "got -0.5"),
    (dict(temperature="1.0"), TypeError, "generate: temperature must be a number, got '1.0'"),
    (dict(temperature=True), TypeError, "generate: temperature must be a number, got True"),
    (dict(top_k=2.5), TypeError, "generate: top_k must be an integer >= 1 or None .*got 2.5"),
    (dict(top_k=True), TypeError, "got True"),
    (dict(top_k=0), ValueError, "generate: top_k must be >= 1 or None .*got 0"),
    (dict(top_k=-3), ValueError, "got -3"),
    (dict(max_new_tokens=2.5), ValueError, "generate: max_new_tokens must be an integer >= 0"),
    (dict(max_new_tokens=-1), ValueError, "got -1"),
])
def test_generate_refuses_bad_sampling_settings(kwargs, error, message):
    model = GPT(tiny_config())
    settings = {"max_new_tokens": 3, **kwargs}
    with pytest.raises(error, match=message):
        model.generate(np.array([[1, 2]]), **settings)


def test_a_tiny_temperature_is_greedy_not_nan():
    """(logits - max) / T is computed with the max subtracted first: no inf - inf = NaN, and as
    T -> 0 the sampling becomes the argmax (it used to sample token 0 forever)."""
    tg.manual_seed(9)
    model = GPT(tiny_config())
    prompt = np.array([[3, 4], [7, 1]])
    greedy = model.generate(prompt, 12, temperature=0.0)
    for temperature in (1e-320, 1e-300, 1e-30):
        tiny = model.generate(prompt, 12, temperature=temperature, top_k=5,
                              rng=np.random.default_rng(1))
        np.testing.assert_array_equal(tiny, greedy)
    assert len(set(greedy[0, 2:].tolist())) > 1  # not a constant token
    logits = np.array([[1.0, 3.0, 2.0], [0.5, 0.5, -1.0]])
    drawn = {tuple(sample_next(logits, 1e-320, None, np.random.default_rng(s))[:, 0])
             for s in range(50)}
    assert drawn == {(1, 0), (1, 1)}  # the argmax; an exact tie stays a fair draw


def test_top_k_beyond_the_vocabulary_means_all_tokens():
    tg.manual_seed(10)
    model = GPT(tiny_config(vocab_size=20))
    prompt = np.array([[1, 2]])
    capped = model.generate(prompt, 8, top_k=np.int64(10_000), rng=np.random.default_rng(2))
    everything = model.generate(prompt, 8, top_k=None, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(capped, everything)


def test_sampling_respects_top_k():
    logits = np.random.default_rng(6).normal(size=(1, 50))
    allowed = set(np.argsort(logits[0])[-3:])
    rng = np.random.default_rng(0)
    drawn = {int(sample_next(logits, 1.0, 3, rng)[0, 0]) for _ in range(300)}
    assert drawn == allowed  # only the 3 likeliest, and each of them turns up


# -- checkpoints ---------------------------------------------------------------------------------

def test_checkpoint_round_trip_rebuilds_the_same_model(tmp_path):
    tokenizer = Tokenizer.from_text("to be or not to be, that is the question", "compact")
    tg.manual_seed(8)
    model = GPT(tiny_config(vocab_size=tokenizer.vocab_size))
    path = save_gpt_checkpoint(tmp_path / "m.safetensors", model, tokenizer, step=3)
    again, tokenizer2, checkpoint = load_gpt(path)
    assert again.config == model.config and checkpoint["step"] == 3
    assert np.array_equal(tokenizer2.vocab_ids, tokenizer.vocab_ids)
    ids = tokenizer.encode("to be or not")[None, :]
    np.testing.assert_array_equal(again.eval()(ids).data, model.eval()(ids).data)


def test_a_checkpoint_of_one_vocabulary_mode_does_not_load_into_the_other(tmp_path):
    text = "to be or not to be, that is the question"
    compact = Tokenizer.from_text(text, "compact")
    full = Tokenizer.from_text(text, "full")
    path = save_gpt_checkpoint(tmp_path / "c.safetensors", GPT(tiny_config(compact.vocab_size)), compact)
    with pytest.raises(CheckpointError, match="compact vocabulary .* full vocabulary"):
        resume_gpt(path, GPT(tiny_config(full.vocab_size)), full)
    other = Tokenizer.from_text("a different corpus with other words entirely", "compact")
    with pytest.raises(CheckpointError, match="different compact vocabulary"):
        resume_gpt(path, GPT(tiny_config(other.vocab_size)), other)


def test_resize_vocabulary_keeps_the_known_tokens_outputs():
    tg.manual_seed(9)
    model = GPT(tiny_config(vocab_size=20)).eval()
    ids = np.array([[1, 5, 19, 3]])
    before = model(ids).data
    model.resize_vocabulary(30)
    after = model(ids).data
    assert after.shape == (1, 4, 30)
    np.testing.assert_array_equal(after[..., :20], before)


# -- the example scripts -------------------------------------------------------------------------

def test_resume_continues_exactly(small_corpus, tmp_path):
    train_gpt = load_example("train_gpt")
    straight = train_gpt.train(train_gpt.parse_args(
        tiny_train_args(small_corpus, tmp_path / "a", "--max-iters", "20")))
    train_gpt.train(train_gpt.parse_args(
        tiny_train_args(small_corpus, tmp_path / "b", "--max-iters", "10")))
    resumed = train_gpt.train(train_gpt.parse_args(
        tiny_train_args(small_corpus, tmp_path / "b", "--max-iters", "20", "--resume")))
    a = straight["model"].state_dict()
    b = resumed["model"].state_dict()
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert resumed["val_loss"] == straight["val_loss"]
    assert (tmp_path / "b" / "best.safetensors").exists()
    assert len((tmp_path / "b" / "metrics.csv").read_text().splitlines()) == 1 + 5  # 0,5,..,20


def test_resume_continues_a_run_of_an_earlier_version_from_its_npz(small_corpus, tmp_path):
    """Before checkpoints were safetensors files, a run folder held last.npz (the same JSON
    document and arrays in a zip): --resume continues from it, exactly, and writes
    last.safetensors."""
    import safetensors
    import safetensors.numpy
    train_gpt = load_example("train_gpt")
    straight = train_gpt.train(train_gpt.parse_args(
        tiny_train_args(small_corpus, tmp_path / "a", "--max-iters", "20")))
    train_gpt.train(train_gpt.parse_args(
        tiny_train_args(small_corpus, tmp_path / "b", "--max-iters", "10")))
    last = tmp_path / "b" / "last.safetensors"
    with safetensors.safe_open(str(last), framework="numpy") as f:
        document = f.metadata()["tinygrad_lite.checkpoint"]
    arrays = safetensors.numpy.load_file(str(last))
    np.savez(tmp_path / "b" / "last.npz", __metadata__=np.frombuffer(document.encode(), np.uint8),
             **arrays)
    last.unlink()
    resumed = train_gpt.train(train_gpt.parse_args(
        tiny_train_args(small_corpus, tmp_path / "b", "--max-iters", "20", "--resume")))
    for name, value in straight["model"].state_dict().items():
        np.testing.assert_array_equal(resumed["model"].state_dict()[name], value, err_msg=name)
    assert last.read_bytes()[8:9] == b"{"  # the continued run wrote safetensors


def test_resume_continues_the_training_clock(small_corpus, tmp_path):
    train_gpt = load_example("train_gpt")
    first = train_gpt.train(train_gpt.parse_args(
        tiny_train_args(small_corpus, tmp_path, "--max-iters", "10")))
    resumed = train_gpt.train(train_gpt.parse_args(
        tiny_train_args(small_corpus, tmp_path, "--max-iters", "20", "--resume")))
    # The first part's seconds are carried over in the checkpoint and added to, not restarted.
    assert resumed["train_seconds"] > first["train_seconds"] > 0
    assert resumed["ms_per_step"] == pytest.approx(1000 * resumed["train_seconds"] / 20)
    clock = [float(line.split(",")[-1]) for line in
             (tmp_path / "metrics.csv").read_text().splitlines()[1:]]
    assert len(clock) == 5 and clock == sorted(clock)  # steps 0, 5, 10, 15, 20
    assert clock[2] == round(first["train_seconds"], 3) and clock[-1] > clock[2]
    saved = load_checkpoint(tmp_path / "last.safetensors", restore_rng=False)
    assert saved["extra"]["train_seconds"] == resumed["train_seconds"]
    assert json.loads((tmp_path / "summary.json").read_text())["train_seconds"] == \
        resumed["train_seconds"]


def test_a_second_run_into_the_same_folder_is_refused_and_loses_nothing(small_corpus, tmp_path,
                                                                         capsys):
    train_gpt = load_example("train_gpt")
    train_gpt.train(train_gpt.parse_args(
        tiny_train_args(small_corpus, tmp_path, "--max-iters", "5")))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(before) == {"config.json", "metrics.csv", "summary.json", "loss.png",
                           "best.safetensors", "last.safetensors"}
    with pytest.raises(SystemExit) as exit_info:
        train_gpt.parse_args(tiny_train_args(small_corpus, tmp_path, "--max-iters", "5"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} already holds a run; a new run would replace" in err
    for name in before:
        assert name in err
    assert "--overwrite" in err and "--resume" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    with pytest.raises(SystemExit):  # both flags contradict each other
        train_gpt.parse_args(tiny_train_args(small_corpus, tmp_path, "--resume", "--overwrite"))
    assert "give one of them" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # another model than the run's
        train_gpt.parse_args(tiny_train_args(small_corpus, tmp_path, "--resume", "--d-model",
                                             "32"))
    assert "was made with other model settings (saved, here): {'d_model': (16, 32)}" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit):  # nothing to resume from
        train_gpt.parse_args(tiny_train_args(small_corpus, tmp_path / "new", "--resume"))
    assert "--resume: there is no" in capsys.readouterr().err
    summary = train_gpt.train(train_gpt.parse_args(
        tiny_train_args(small_corpus, tmp_path, "--max-iters", "10", "--overwrite")))
    assert summary["steps"] == 10 and load_checkpoint(tmp_path / "last.safetensors",
                                                      restore_rng=False)["step"] == 10


def test_training_script_starts_near_ln_v_and_learns(small_corpus, tmp_path):
    train_gpt = load_example("train_gpt")
    summary = train_gpt.train(train_gpt.parse_args(tiny_train_args(
        small_corpus, tmp_path, "--max-iters", "60", "--eval-interval", "60", "--lr", "5e-3")))
    first = (tmp_path / "metrics.csv").read_text().splitlines()[1].split(",")
    assert abs(float(first[1]) - math.log(summary["vocab_size"])) < 0.5
    assert summary["train_loss"] < float(first[1]) - 1.0
    assert summary["tokens_per_second"] > 0


def test_empty_or_too_short_corpus_is_refused_before_training(tmp_path, capsys):
    train_gpt = load_example("train_gpt")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        train_gpt.parse_args(tiny_train_args(empty, tmp_path))
    assert exit_info.value.code == 2
    assert "argument --data: " in capsys.readouterr().err
    short = tmp_path / "short.txt"
    short.write_text("To be, or not to be, that is the question: " * 3)  # ~40 tokens
    with pytest.raises(SystemExit) as exit_info:
        train_gpt.parse_args(tiny_train_args(short, tmp_path))
    assert exit_info.value.code == 2
    assert re.search(r"the val split has \d+ tokens, fewer than context_length \+ 1 = 17",
                     capsys.readouterr().err)
    assert set(tmp_path.iterdir()) == {empty, short}  # no run folder was started


def test_finetune_freezes_the_lower_layers_and_extends_a_compact_vocabulary(small_corpus,
                                                                           tmp_path):
    train_gpt = load_example("train_gpt")
    finetune_gpt = load_example("finetune_gpt")
    train_gpt.train(train_gpt.parse_args(tiny_train_args(
        small_corpus, tmp_path / "en", "--max-iters", "5", "--num-blocks", "2")))
    poems = tmp_path / "poems.txt"
    poems.write_text(TANG.read_text(encoding="utf-8")[:3000], encoding="utf-8")
    original, _, _ = load_gpt(tmp_path / "en" / "best.safetensors")
    result = finetune_gpt.finetune(finetune_gpt.parse_args([
        "--checkpoint", str(tmp_path / "en" / "best.safetensors"), "--data", str(poems),
        "--freeze-blocks", "1", "--max-iters", "30", "--batch-size", "4", "--lr", "3e-3",
        "--eval-iters", "2", "--out-dir", str(tmp_path / "ft"), "--quiet"]))
    model = result["model"]
    assert result["added_tokens"] > 0
    assert model.config.vocab_size == original.config.vocab_size + result["added_tokens"]
    old_rows = original.config.vocab_size
    np.testing.assert_array_equal(model.token_embedding.weight.data[:old_rows],
                                  original.token_embedding.weight.data)  # frozen
    frozen, trained = original.blocks[0].state_dict(), model.blocks[0].state_dict()
    assert all(np.array_equal(frozen[k], trained[k]) for k in frozen)
    upper_before, upper_after = original.blocks[1].state_dict(), model.blocks[1].state_dict()
    assert not all(np.array_equal(upper_before[k], upper_after[k]) for k in upper_before)
    assert result["val_after"] < result["val_before"]
