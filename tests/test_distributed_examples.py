"""The examples under ``mpirun -np 2``, as a user runs them: train_gpt (plain data parallel and
ZeRO-1) and transformer_regression train, only rank 0 prints and writes the run folder, and the
GPT's checkpoints move between 1 and 2 ranks.

How the checkpoint tests see "the state after loading": a run resumed with ``--max-iters`` equal
to the saved step trains nothing and ends with its evaluation, which saves ``last.safetensors`` again --
the loaded model and optimizer state (under ZeRO-1 gathered back from both ranks' parts), to be
compared array by array with what was saved. A run that trains on after ``--resume`` on the same
number of ranks must end bit-identical to the uninterrupted run.

Every launch has a timeout (tests/mpi_run.py); the models are tiny and runs take a few steps.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from mpi_run import mpirun, needs_mpi
from test_examples import load_example
from tinygrad_lite.train.checkpoint import load_checkpoint

pytestmark = needs_mpi

ROOT = Path(__file__).resolve().parents[1]
GPT_FILES = {"config.json", "metrics.csv", "summary.json", "loss.png", "best.safetensors", "last.safetensors"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The first ~12k characters of tiny Shakespeare (~3k tokens)."""
    path = tmp_path_factory.mktemp("corpus") / "small.txt"
    text = (ROOT / "data" / "tinyshakespeare.txt").read_text(encoding="utf-8")[:12_000]
    path.write_text(text, encoding="utf-8")
    return path


def gpt_args(corpus: Path, out_dir: Path, *extra: str) -> list:
    """A tiny GPT, 4 windows per step, evaluated and checkpointed every 2 steps."""
    return ["--data", str(corpus), "--vocab", "compact", "--d-model", "16", "--num-blocks", "1",
            "--num-heads", "2", "--context-length", "16", "--batch-size", "4",
            "--eval-interval", "2", "--eval-iters", "2", "--sample-tokens", "0",
            "--out-dir", str(out_dir), *extra]


def gpt_on_two_ranks(corpus: Path, out_dir: Path, *extra: str) -> str:
    """Run train_gpt.py under ``mpirun -np 2``; its standard output."""
    result = mpirun(ROOT / "examples" / "train_gpt.py", *gpt_args(corpus, out_dir, *extra),
                    timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def gpt_in_this_process(corpus: Path, out_dir: Path, *extra: str) -> None:
    """Run train_gpt in this process: a world of 1."""
    train_gpt = load_example("train_gpt")
    train_gpt.train(train_gpt.parse_args(gpt_args(corpus, out_dir, *extra)))


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def assert_same(saved, loaded, where: str = "") -> None:
    """Nested dicts/lists/tuples of arrays and numbers, equal value for value (arrays bit for
    bit, dtypes included)."""
    if isinstance(saved, dict):
        assert isinstance(loaded, dict) and saved.keys() == loaded.keys(), where
        for key in saved:
            assert_same(saved[key], loaded[key], f"{where}/{key}")
    elif isinstance(saved, (list, tuple)):
        assert isinstance(loaded, (list, tuple)) and len(saved) == len(loaded), where
        for i, (a, b) in enumerate(zip(saved, loaded)):
            assert_same(a, b, f"{where}/{i}")
    elif isinstance(saved, np.ndarray):
        assert loaded.dtype == saved.dtype, where
        np.testing.assert_array_equal(loaded, saved, err_msg=where)
    else:
        assert loaded == saved, where


def assert_same_training_state(saved_path: Path, loaded_path: Path, rng: bool = False) -> None:
    """The model and optimizer state (and with ``rng`` every random stream) of two
    checkpoints are identical."""
    saved = load_checkpoint(saved_path, restore_rng=False)
    loaded = load_checkpoint(loaded_path, restore_rng=False)
    assert saved["step"] == loaded["step"]
    assert loaded["optimizer_class"] == "AdamW"  # the plain format, also from ZeRO-1
    assert_same(saved["model"], loaded["model"], "model")
    assert_same(saved["optimizer"], loaded["optimizer"], "optimizer")
    if rng:
        assert_same(saved["rng"], loaded["rng"], "rng")
        assert_same(saved["extra"]["rank_streams"], loaded["extra"]["rank_streams"], "streams")


# -- runs shared by the tests (each a separate mpirun) -----------------------------------------

@pytest.fixture(scope="module")
def straight(corpus, tmp_path_factory) -> tuple[Path, str]:
    """4 steps on 2 ranks, uninterrupted: the run folder and the output."""
    out = tmp_path_factory.mktemp("straight")
    return out, gpt_on_two_ranks(corpus, out, "--max-iters", "4")


@pytest.fixture(scope="module")
def halfway(corpus, tmp_path_factory):
    """``halfway(zero)``: the folder of a run of 2 steps on 2 ranks (plain data parallel for
    zero "0", ZeRO-1 for "1"), to be resumed; each made once, when a test first asks for it."""
    runs = {}

    def run(zero: str) -> Path:
        if zero not in runs:
            runs[zero] = tmp_path_factory.mktemp(f"halfway_zero{zero}")
            gpt_on_two_ranks(corpus, runs[zero], "--max-iters", "2", "--zero", zero, "--quiet")
        return runs[zero]
    return run


PLAIN_AND_ZERO = pytest.mark.parametrize("zero", ["0", "1"], ids=["plain", "zero1"])


# -- the tests ------------------------------------------------------------------------------------

def test_gpt_on_two_ranks_trains_and_only_rank_0_prints_and_writes(straight):
    out_dir, output = straight
    assert output.count("GPT with 37,104 parameters") == 1
    assert "data parallel on 2 ranks: the 4 windows of a step are drawn 2 + 2" in output
    evaluations = re.findall(r"^step\s+(\d+): train loss ([0-9.]+), val loss ([0-9.]+)",
                             output, re.M)
    assert [int(step) for step, _, _ in evaluations] == [0, 2, 4]
    assert output.count(f"run folder: {out_dir}") == 1
    # Only rank 0 wrote: the run's files and nothing else, one metrics row per evaluation.
    assert {p.name for p in out_dir.iterdir()} == GPT_FILES
    rows = (out_dir / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 3
    train_losses = [float(row.split(",")[1]) for row in rows[1:]]
    val_losses = [float(row.split(",")[2]) for row in rows[1:]]
    assert all(later < earlier for earlier, later in zip(train_losses, train_losses[1:]))
    assert val_losses[-1] < val_losses[0]
    config = json.loads((out_dir / "config.json").read_text())
    assert config["world_size"] == 2 and config["zero"] == 0
    assert json.loads((out_dir / "summary.json").read_text())["steps"] == 4
    # Both ranks' random streams are saved, and they are different streams.
    saved = load_checkpoint(out_dir / "last.safetensors", restore_rng=False)
    streams = saved["extra"]["rank_streams"]
    assert saved["extra"]["world_size"] == 2 and len(streams) == 2
    assert streams[0] != streams[1]
    assert streams[0] == {"batches": saved["rng"]["batches"], "package": saved["rng"]["package"]}


# (ZeRO-1 resumed: one more launch of ~7 s, so in the slow set; the fast set resumes ZeRO-1
# checkpoints in the two tests after this one.)
@pytest.mark.parametrize("zero", [pytest.param("0", id="plain"),
                                  pytest.param("1", marks=pytest.mark.slow, id="zero1")])
def test_resume_on_two_ranks_equals_the_uninterrupted_run(zero, straight, halfway, corpus,
                                                          tmp_path):
    """Resumed from step 2 to 4 on 2 ranks: the same final model, optimizer state and random
    streams as the uninterrupted plain run (ZeRO-1 changes only where the optimizer state
    lives, not the numbers)."""
    resumed = copy_run(halfway(zero), tmp_path / "resumed")
    output = gpt_on_two_ranks(corpus, resumed, "--max-iters", "4", "--zero", zero, "--resume")
    assert f"resumed from {resumed / 'last.safetensors'} at step 2" in output
    assert "restart" not in output
    assert_same_training_state(straight[0] / "last.safetensors", resumed / "last.safetensors", rng=True)


@PLAIN_AND_ZERO
def test_a_two_rank_checkpoint_resumes_in_one_process(zero, halfway, corpus, tmp_path, capsys):
    folder = halfway(zero)
    resumed = copy_run(folder, tmp_path / "resumed")
    gpt_in_this_process(corpus, resumed, "--max-iters", "2", "--resume")  # loads, saves again
    output = capsys.readouterr().out
    assert (f"{resumed / 'last.safetensors'} was written by 2 rank(s), this run has 1: weights, "
            f"optimizer state and step restored; the batch and dropout streams restart from "
            f"(seed 1337, step 2)") in output
    assert_same_training_state(folder / "last.safetensors", resumed / "last.safetensors")
    gpt_in_this_process(corpus, resumed, "--max-iters", "3", "--resume", "--quiet")  # trains on
    continued = load_checkpoint(resumed / "last.safetensors", restore_rng=False)
    assert continued["step"] == 3 and continued["extra"]["world_size"] == 1
    assert json.loads((resumed / "summary.json").read_text())["steps"] == 3


@PLAIN_AND_ZERO
def test_a_one_process_checkpoint_resumes_on_two_ranks(zero, corpus, tmp_path):
    folder = tmp_path / "run"
    gpt_in_this_process(corpus, folder, "--max-iters", "2", "--quiet")
    saved = shutil.copy(folder / "last.safetensors", tmp_path / "saved.safetensors")
    output = gpt_on_two_ranks(corpus, folder, "--max-iters", "2", "--zero", zero, "--resume")
    assert "was written by 1 rank(s), this run has 2" in output
    assert_same_training_state(Path(saved), folder / "last.safetensors")
    assert load_checkpoint(folder / "last.safetensors", restore_rng=False)["extra"]["world_size"] == 2


def test_a_second_run_into_the_same_folder_is_refused_once(straight, corpus, tmp_path):
    """Rank 0 alone checks the run folder (the others follow it): one refusal, nothing lost."""
    folder = copy_run(straight[0], tmp_path / "run")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = mpirun(ROOT / "examples" / "train_gpt.py", *gpt_args(corpus, folder), timeout=60)
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.count("already holds a run") == 1, result.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_transformer_regression_on_two_ranks_lowers_the_loss(tmp_path):
    result = mpirun(ROOT / "examples" / "transformer_regression.py", "--epochs", "3",
                    "--samples", "320", "--out-dir", str(tmp_path), timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    output = result.stdout
    assert "8 batches per epoch on each of 2 ranks" in output
    losses = [float(m) for m in re.findall(r"^\s+[1-9]\d*\s+([0-9.]+)\s", output, re.M)]
    assert len(losses) == 3 and losses[-1] < 0.5 * losses[0]  # printed once: rank 0 only
    before = float(re.search(r"before training ([0-9.]+)", output).group(1))
    after = float(re.search(r"-> after ([0-9.]+)", output).group(1))
    assert after < 0.25 * before
    assert {p.name for p in tmp_path.iterdir()} == {"config.json", "metrics.csv",
                                                    "summary.json", "loss.png"}
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 1 + 3
