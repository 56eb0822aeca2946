"""The examples run end to end (in a subprocess, as a user runs them) and print what they
promise: sin_fit's gradient check, its table and the optimum; the Transformer regressor's
falling loss; each writes its run folder. And every command line refuses a bad value before
any training starts (in-process: only the parsers run), with a help text on every flag."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tinygrad_lite
from tinygrad_lite.train.logger import RUN_FILES

ROOT = Path(__file__).resolve().parents[1]
# The examples must import the same tinygrad_lite as this test run (the installed one, with its
# compiled kernels), so that folder goes first on their path.
PACKAGE_PARENT = str(Path(tinygrad_lite.__file__).resolve().parents[1])


def run_example(name: str, *args: str, threads: str | None = None) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    if threads:
        env["TGL_NUM_THREADS"] = threads
    result = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_run_folder(folder: Path, out: str) -> dict:
    """The run folder holds the four files of every run, and the output says where it is."""
    for name in RUN_FILES[:3]:
        assert (folder / name).stat().st_size > 0, name
    assert (folder / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"run folder: {folder}" in out
    assert json.loads((folder / "config.json").read_text())["out_dir"] == str(folder)
    return json.loads((folder / "summary.json").read_text())


def number_after(label: str, text: str) -> float:
    match = re.search(re.escape(label) + r"\s*([-+0-9.e]+)", text)
    assert match, f"{label!r} not found in:\n{text[-2000:]}"
    return float(match.group(1))


def test_sin_fit_reference_settings_print_gradient_check_and_table(tmp_path):
    out = run_example("sin_fit.py", "--epochs", "250", "--out", str(tmp_path))
    assert number_after("largest |difference|  =", out) < 1e-10
    for line in ("split      n          MSE", "train   1400", "val      300", "test     300"):
        assert line in out
    assert out.count("  x = ") == 5 and "sin(x) +1.00000" in out
    logged = re.findall(r"^\s+(\d+)\s+1e-06\s", out, re.M)  # a log line every 100 epochs
    assert logged == ["1", "100", "200", "250"]
    assert "NOT within 1%" in out and "expected result of the reference settings" in out
    assert (tmp_path / "best.safetensors").exists() and (tmp_path / "fit.png").exists()
    summary = assert_run_folder(tmp_path, out)
    assert summary["epochs"] == 250 and summary["test_r2"] < 0


def test_sin_fit_documented_settings_reach_the_least_squares_optimum(tmp_path):
    out = run_example("sin_fit.py", "--optimizer", "adamw", "--lr", "0.05", "--out",
                      str(tmp_path))
    fitted = number_after("test MSE: fitted", out)
    optimum = number_after("least-squares optimum", out)
    assert fitted <= 1.01 * optimum
    assert "within 1% of the closed-form optimum" in out


def test_transformer_regression_loss_falls(tmp_path):
    # One kernel thread: the test must stay fast even when other tests load both cores.
    out = run_example("transformer_regression.py", "--epochs", "3", "--samples", "320",
                      "--out-dir", str(tmp_path), threads="1")
    losses = [float(m) for m in re.findall(r"^\s+[1-9]\d*\s+([0-9.]+)\s", out, re.M)]
    assert len(losses) == 3 and losses[-1] < 0.5 * losses[0]
    assert "validation predictions (eval mode, no_grad)" in out
    before = number_after("validation MSE: before training", out)
    assert number_after("-> after", out) < 0.25 * before
    summary = assert_run_folder(tmp_path, out)
    assert summary["epochs"] == 3 and summary["val_loss"] < 0.25 * before
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 1 + 3


def test_log_lines_during_training_go_through_tqdm_write(corpus, tmp_path, monkeypatch, capsys):
    """tqdm.write prints a line above the progress bar instead of through it."""
    train_gpt = load_example("train_gpt")
    written = []
    monkeypatch.setattr(train_gpt.tqdm, "write", written.append)
    train_gpt.train(train_gpt.parse_args([
        "--data", str(corpus), "--vocab", "compact", "--d-model", "16", "--num-blocks", "1",
        "--num-heads", "2", "--context-length", "16", "--max-iters", "4", "--eval-interval", "2",
        "--eval-iters", "1", "--out-dir", str(tmp_path), "--sample-tokens", "0"]))
    evaluations = [line for line in written if line.startswith("step ")]
    assert [line.split(":")[0] for line in evaluations] == ["step     0", "step     2",
                                                            "step     4"]
    assert f"run folder: {tmp_path}" in written[-1]
    assert capsys.readouterr().out == ""  # nothing printed past tqdm


def test_a_rerun_is_refused_before_training_and_lists_what_would_be_lost(tmp_path):
    run_example("sin_fit.py", "--epochs", "5", "--out", str(tmp_path))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "sin_fit.py"), "--epochs",
                             "5", "--out", str(tmp_path)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": PACKAGE_PARENT}, timeout=300)
    assert result.returncode == 2 and result.stdout == ""  # not even the data line
    assert "a new run would replace config.json, metrics.csv, summary.json, loss.png, " \
           "best.safetensors, fit.png" in result.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    out = run_example("sin_fit.py", "--epochs", "7", "--out", str(tmp_path), "--overwrite")
    assert json.loads((tmp_path / "summary.json").read_text())["epochs"] == 7 and out


# -- the command lines ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "small.txt"
    text = (ROOT / "data" / "tinyshakespeare.txt").read_text(encoding="utf-8")[:12_000]
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def gpt_checkpoint(corpus, tmp_path_factory) -> Path:
    """A 2-block GPT trained for 2 steps: what finetune_gpt and generate read."""
    out = tmp_path_factory.mktemp("gpt")
    train_gpt = load_example("train_gpt")
    train_gpt.train(train_gpt.parse_args([
        "--data", str(corpus), "--vocab", "compact", "--d-model", "16", "--num-blocks", "2",
        "--num-heads", "2", "--context-length", "16", "--max-iters", "2", "--eval-iters", "1",
        "--out-dir", str(out), "--quiet", "--sample-tokens", "0"]))
    return out / "best.safetensors"


def parse(name: str, argv: list):
    module = load_example(name)
    if name in ("generate", "export_gpt"):
        return module.build_parser().parse_args(argv)
    return module.parse_args(argv)


def binary_file(folder: Path) -> Path:
    path = folder / "weights.bin"
    path.write_bytes(bytes(range(256)) * 4)
    return path


BAD_ARGUMENTS = [
    # (example, arguments, what the error must say)
    ("train_gpt", ["--lr", "nan"], "argument --lr: must be a finite number > 0, got 'nan'"),
    ("train_gpt", ["--lr", "inf"], "argument --lr: must be a finite number > 0, got 'inf'"),
    ("train_gpt", ["--lr=-1e-3"], "argument --lr: must be a finite number > 0, got '-1e-3'"),
    ("train_gpt", ["--max-iters", "0"], "argument --max-iters: must be a positive integer, got "
                                        "'0'"),
    ("train_gpt", ["--batch-size", "0"], "argument --batch-size: must be a positive integer"),
    ("train_gpt", ["--batch-size", "2.5"], "argument --batch-size: must be a positive integer, "
                                           "got '2.5'"),
    ("train_gpt", ["--eval-iters", "-1"], "argument --eval-iters: must be a positive integer"),
    ("train_gpt", ["--dropout", "1"], "argument --dropout: must be a number in [0, 1), got '1'"),
    ("train_gpt", ["--dropout", "-0.1"], "argument --dropout: must be a number in [0, 1)"),
    ("train_gpt", ["--weight-decay", "nan"], "argument --weight-decay: must be a finite number "
                                             ">= 0, got 'nan'"),
    ("train_gpt", ["--temperature", "nan"], "argument --temperature: must be a finite number "
                                            ">= 0, got 'nan'"),
    ("train_gpt", ["--temperature", "-1"], "argument --temperature: must be a finite number"),
    ("train_gpt", ["--top-k", "2.5"], "argument --top-k: must be a positive integer, got '2.5'"),
    ("train_gpt", ["--top-k", "0"], "argument --top-k: must be a positive integer, got '0'"),
    ("train_gpt", ["--top-k", "-5"], "argument --top-k: must be a positive integer, got '-5'"),
    ("train_gpt", ["--context-length", "100000"], "the train split has 2847 tokens, fewer "
                                                  "than context_length + 1 = 100001 needed for "
                                                  "one example: use a longer corpus or a "
                                                  "shorter --context-length"),
    ("train_gpt", ["--d-model", "18", "--num-heads", "4"], "d_model 18 must be divisible by "
                                                           "num_heads 4"),
    ("train_gpt", ["--data", "BINARY"], "argument --data: '{BINARY}' is not UTF-8 text (byte 128"
                                        " is 0x80)"),
    ("train_gpt", ["--data", "MISSING"], "argument --data: no such file: '{MISSING}'"),
    ("sin_fit", ["--points", "3"], "argument --points: 3 points split 70/15/15 into 2/0/1 "
                                   "train/val/test points; every split needs at least 2 (use "
                                   "--points 14 or more)"),
    ("sin_fit", ["--seed", "-1"], "argument --seed: must be an integer >= 0, got '-1'"),
    ("sin_fit", ["--epochs", "0"], "argument --epochs: must be a positive integer, got '0'"),
    ("sin_fit", ["--lr", "nan"], "argument --lr: must be a finite number > 0, got 'nan'"),
    ("sin_fit", ["--plateau-factor", "1.5"], "argument --plateau-factor: must be a number "
                                             "strictly between 0 and 1, got '1.5'"),
    ("sin_fit", ["--momentum", "-0.9"], "argument --momentum: must be a finite number >= 0"),
    ("sin_fit", ["--nesterov"], "--nesterov needs --optimizer sgd and --momentum > 0"),
    ("transformer_regression", ["--samples", "3"], "argument --samples: 3 sequences leave fewer "
                                                   "than 2 for validation"),
    ("transformer_regression", ["--epochs", "0"], "argument --epochs: must be a positive integer"),
    ("transformer_regression", ["--batch-size", "0"], "argument --batch-size: must be a positive"),
    ("transformer_regression", ["--lr", "nan"], "argument --lr: must be a finite number > 0"),
    ("finetune_gpt", ["--freeze-blocks", "3"], "argument --freeze-blocks: must be in 0..2 (the "
                                               "model has 2 blocks), got 3"),
    ("finetune_gpt", ["--max-iters", "0"], "argument --max-iters: must be a positive integer"),
    ("finetune_gpt", ["--lr", "nan"], "argument --lr: must be a finite number > 0, got 'nan'"),
    ("finetune_gpt", ["--data", "BINARY"], "argument --data: '{BINARY}' is not UTF-8 text"),
    ("finetune_gpt", ["--checkpoint", "MISSING"], "argument --checkpoint: no such file: "
                                                  "'{MISSING}'"),
    ("finetune_gpt", ["--checkpoint", "BINARY"], "is not a readable checkpoint"),
    ("generate", ["--temperature", "nan"], "argument --temperature: must be a finite number >= 0"),
    ("generate", ["--top-k", "2.5"], "argument --top-k: must be a positive integer, got '2.5'"),
    ("generate", ["--max-new-tokens", "-1"], "argument --max-new-tokens: must be an integer >= 0"),
    ("generate", ["--checkpoint", "MISSING"], "argument --checkpoint: no such file"),
    ("generate", ["--engine", "torch"], "argument --engine: invalid choice: 'torch'"),
    ("export_gpt", ["--checkpoint", "MISSING"], "argument --checkpoint: no such file"),
    ("export_gpt", ["--opset", "0"], "argument --opset: must be a positive integer, got '0'"),
]


@pytest.mark.parametrize("name, argv, message", BAD_ARGUMENTS,
                         ids=[f"{n}{' '.join(a)}" for n, a, _ in BAD_ARGUMENTS])
def test_a_bad_argument_is_an_argparse_error_before_training(name, argv, message, corpus,
                                                             gpt_checkpoint, tmp_path, capsys):
    paths = {"BINARY": str(binary_file(tmp_path)), "MISSING": str(tmp_path / "missing.txt")}
    argv = [paths.get(a, a) for a in argv]
    base = {"train_gpt": ["--data", str(corpus), "--vocab", "compact", "--context-length", "16",
                          "--d-model", "16", "--num-heads", "2"],
            "finetune_gpt": ["--checkpoint", str(gpt_checkpoint)],
            "generate": ["--checkpoint", str(gpt_checkpoint)],
            "export_gpt": ["--checkpoint", str(gpt_checkpoint)]}.get(name, [])
    out_dir = [] if name in ("generate", "export_gpt") else ["--out-dir", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as exit_info:
        parse(name, base + out_dir + argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message.format(**paths) in err, err
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.parametrize("name, outputs", [
    ("train_gpt", "config.json, metrics.csv, summary.json, loss.png, best.safetensors, last.safetensors"),
    ("sin_fit", "config.json, metrics.csv, summary.json, loss.png, best.safetensors, fit.png"),
    ("transformer_regression", "config.json, metrics.csv, summary.json, loss.png"),
    ("finetune_gpt", "config.json, metrics.csv, summary.json, loss.png, finetuned.safetensors"),
])
def test_every_example_refuses_to_replace_a_run_unless_told(name, outputs, corpus,
                                                            gpt_checkpoint, tmp_path, capsys):
    for file in outputs.split(", "):
        (tmp_path / file).write_text("the earlier run")
    base = {"train_gpt": ["--data", str(corpus), "--vocab", "compact", "--context-length", "16",
                          "--d-model", "16", "--num-heads", "2"],
            "finetune_gpt": ["--checkpoint", str(gpt_checkpoint), "--freeze-blocks", "1"]
            }.get(name, [])
    with pytest.raises(SystemExit) as exit_info:
        parse(name, base + ["--out-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert f"{tmp_path} already holds a run; a new run would replace {outputs}. Give " \
           f"--overwrite to replace it" in capsys.readouterr().err
    assert parse(name, base + ["--out-dir", str(tmp_path), "--overwrite"]).overwrite
    assert all(p.read_text() == "the earlier run" for p in tmp_path.iterdir())


@pytest.mark.parametrize("name", ["train_gpt", "sin_fit", "transformer_regression",
                                  "finetune_gpt", "generate", "export_gpt"])
def test_every_flag_has_a_help_text_and_shows_its_default(name):
    parser = load_example(name).build_parser()
    assert parser.formatter_class is argparse.ArgumentDefaultsHelpFormatter
    for action in parser._actions:
        assert action.help and action.help.strip(), f"{name}: {action.option_strings} has no help"
    formatter = parser._get_formatter()
    for action in parser._actions[1:]:  # after -h
        assert "(default: " in formatter._expand_help(action), action.option_strings


def test_export_gpt_then_generate_with_onnxruntime_gives_the_engines_text(gpt_checkpoint,
                                                                         tmp_path, capsys):
    """checkpoint -> .weights.safetensors + .onnx (sizes and verifications printed) -> the same
    greedy and sampled text from ONNX Runtime as from the engine; existing outputs are refused
    without --overwrite; a missing .onnx is an argparse error."""
    onnx_path, weights_path = tmp_path / "gpt.onnx", tmp_path / "gpt.weights.safetensors"
    command = ["--checkpoint", str(gpt_checkpoint), "--onnx", str(onnx_path),
               "--weights", str(weights_path)]
    difference = load_example("export_gpt").main(command)
    out = capsys.readouterr().out
    assert f"{onnx_path}: " in out and " MB (ONNX opset 17;" in out
    assert f"{weights_path}: " in out and "reloaded logits bit-identical" in out
    import safetensors.numpy
    from tinygrad_lite.train.language_model import load_gpt
    model = load_gpt(gpt_checkpoint)[0]
    weights = safetensors.numpy.load_file(str(weights_path))
    assert weights.keys() == model.state_dict().keys()
    before = {p: p.read_bytes() for p in (onnx_path, weights_path)}
    with pytest.raises(SystemExit) as exit_info:
        load_example("export_gpt").main(command)
    assert exit_info.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert before == {p: p.read_bytes() for p in (onnx_path, weights_path)}
    assert number_after("verification: max |onnxruntime - tinygrad_lite| =", out) == \
        pytest.approx(difference, rel=0.01) and difference < 1e-5
    generate = load_example("generate")
    for settings in (["--temperature", "0"], ["--temperature", "1", "--top-k", "20"]):
        common = ["--checkpoint", str(gpt_checkpoint), "--max-new-tokens", "24", *settings]
        ours = generate.main(common)
        assert generate.main(common + ["--engine", "onnxruntime", "--onnx", str(onnx_path)]) \
            == ours
    with pytest.raises(SystemExit) as exit_info:
        generate.main(["--checkpoint", str(gpt_checkpoint), "--engine", "onnxruntime"])
    assert exit_info.value.code == 2
    assert "argument --onnx: no such file" in capsys.readouterr().err
