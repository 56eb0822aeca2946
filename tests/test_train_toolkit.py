"""The training toolkit: metrics, early stopping, checkpoints (round trip, exact resume, bad
files), the run logger and the progress bar."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from tqdm.auto import tqdm

import tinygrad_lite as tg
from tinygrad_lite import nn, optim
from tinygrad_lite.data import DataLoader, TensorDataset
from tinygrad_lite.train import (CheckpointError, EarlyStopping, RunLogger, accuracy,
                                 load_checkpoint, mae, mse, progress, r2, rmse, save_checkpoint)
from tinygrad_lite.train.logger import RUN_FILES, existing_run_files


# -- metrics --------------------------------------------------------------------------------

def test_metrics_against_numpy():
    rng = np.random.default_rng(0)
    y = rng.standard_normal(50)
    p = y + 0.3 * rng.standard_normal(50)
    assert mse(p, y) == pytest.approx(np.mean((p - y) ** 2))
    assert rmse(tg.tensor(p), tg.tensor(y)) == pytest.approx(np.sqrt(np.mean((p - y) ** 2)),
                                                             rel=1e-6)
    assert mae(p, y) == pytest.approx(np.mean(np.abs(p - y)))
    assert r2(p, y) == pytest.approx(1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))
    assert r2(y, y) == 1.0 and r2(np.full(50, y.mean()), y) == pytest.approx(0.0, abs=1e-12)
    logits = np.array([[2.0, 1.0], [0.1, 0.3], [5.0, -1.0]])
    assert accuracy(logits, np.array([0, 1, 1])) == pytest.approx(2 / 3)
    assert accuracy(np.array([1, 1]), np.array([1, 0])) == 0.5
    with pytest.raises(ValueError, match=r"shape \(3,\) and targets of shape \(4,\)"):
        mse(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="constant"):
        r2(np.zeros(3), np.ones(3))


# -- early stopping -------------------------------------------------------------------------

def test_early_stopping():
    stopper = EarlyStopping(patience=2, min_delta=0.1)
    decisions = [stopper.step(v) for v in [1.0, 0.8, 0.75, 0.72, 0.5, 0.6]]
    # 0.75 and 0.72 are not better than 0.8 - 0.1: two epochs without improvement -> stop.
    assert decisions == [False, False, False, True, False, False]
    assert stopper.best == 0.5 and stopper.best_epoch == 4
    up = EarlyStopping(patience=1, mode="max")
    assert [up.step(v) for v in [1, 2, 2]] == [False, False, True]
    with pytest.raises(ValueError, match="patience must be >= 1"):
        EarlyStopping(patience=0)


# -- checkpoints ----------------------------------------------------------------------------

def make_run(seed=0):
    """A small model, optimizer, scheduler and seeded shuffled loader."""
    tg.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 1))
    opt = optim.AdamW(model.parameters(), lr=0.01)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    data = np.random.default_rng(1)
    x = data.standard_normal((40, 3)).astype(np.float32)
    y = x.sum(1, keepdims=True).astype(np.float32)
    generator = np.random.default_rng(2)
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, generator=generator)
    return model, opt, sched, loader, generator


def train_epochs(model, opt, sched, loader, epochs):
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.mse_loss(model(xb), yb).backward()  # dropout draws from the package rng
            opt.step()
        sched.step()


def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path):
    model, opt, sched, loader, _ = make_run()
    train_epochs(model, opt, sched, loader, 4)
    expected = model.state_dict()

    model, opt, sched, loader, generator = make_run()
    train_epochs(model, opt, sched, loader, 2)
    path = save_checkpoint(tmp_path / "ckpt.safetensors", model=model, optimizer=opt, scheduler=sched,
                           epoch=2, step=20, hyperparameters={"lr": 0.01, "sizes": [3, 8, 1]},
                           generators={"loader": generator})
    tg.manual_seed(999)  # disturb every random state before resuming
    model, opt, sched, loader, generator = make_run(seed=5)
    generator.random(7)
    saved = load_checkpoint(path, model=model, optimizer=opt, scheduler=sched,
                            generators={"loader": generator})
    assert saved["epoch"] == 2 and saved["step"] == 20
    assert saved["hyperparameters"] == {"lr": 0.01, "sizes": [3, 8, 1]}
    train_epochs(model, opt, sched, loader, 2)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)


def test_checkpoint_round_trips_values_exactly(tmp_path):
    model, opt, sched, loader, _ = make_run()
    train_epochs(model, opt, sched, loader, 1)
    path = save_checkpoint(tmp_path / "c.safetensors", model=model, optimizer=opt, scheduler=sched,
                           extra={"best": math.inf, "history": [1.5, 2.5], "name": "run"})
    saved = load_checkpoint(path, restore_rng=False)
    assert saved["extra"] == {"best": math.inf, "history": [1.5, 2.5], "name": "run"}
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(saved["model"][name], value)
        assert saved["model"][name].dtype == value.dtype
    state = opt.state_dict()
    assert saved["optimizer"]["param_groups"] == state["param_groups"]  # betas stay a tuple
    assert set(saved["optimizer"]["state"]) == set(state["state"])  # integer keys stay integers
    assert saved["scheduler"] == sched.state_dict()
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temporary file left behind


def test_loading_never_unpickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __metadata__=np.array([{"a": 1}], dtype=object))  # an object array (pickle)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)
    with pytest.raises(TypeError, match="dtype object"):
        save_checkpoint(tmp_path / "x.safetensors", extra={"bad": np.array([None], dtype=object)})


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_damaged_checkpoint_gives_a_clear_error(tmp_path, damage):
    model, opt, sched, _, _ = make_run()
    path = save_checkpoint(tmp_path / "c.safetensors", model=model, optimizer=opt)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":  # corrupt bytes inside the first stored array
        for i in range(60, 80):
            data[i] ^= 0xFF
    elif damage == "garbage":
        data = bytearray(b"this is not a checkpoint at all" * 10)
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=str(path.name)):
        load_checkpoint(path, model=model)


def test_mismatched_checkpoint_names_the_problem(tmp_path):
    model, opt, _, _, _ = make_run()
    path = save_checkpoint(tmp_path / "c.safetensors", model=model)
    other = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.2), nn.Linear(4, 1))
    with pytest.raises(CheckpointError, match=r"'0.weight': shape \(8, 3\) in the state dict, "
                                              r"\(4, 3\) in the model"):
        load_checkpoint(path, model=other)
    with pytest.raises(CheckpointError, match="holds no optimizer state"):
        load_checkpoint(path, optimizer=opt)
    with pytest.raises(CheckpointError, match="missing keys: \\['4.weight'"):
        load_checkpoint(path, model=nn.Sequential(*list(model), nn.Linear(1, 1)))
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a tinygrad_lite checkpoint"):
        load_checkpoint(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.npz")


def test_failed_write_keeps_the_previous_checkpoint(tmp_path):
    model = nn.Linear(2, 2)
    path = save_checkpoint(tmp_path / "c.safetensors", model=model, step=1)
    with pytest.raises(TypeError, match="cannot save"):
        save_checkpoint(path, model=model, step=2, extra={"bad": object()})
    assert load_checkpoint(path)["step"] == 1
    assert os.listdir(tmp_path) == ["c.safetensors"]


# -- logger and progress --------------------------------------------------------------------

def test_run_logger_csv_and_jsonl(tmp_path):
    log = RunLogger(tmp_path / "m.csv")
    log.log(epoch=1, loss=0.5, val=tg.tensor(0.25))
    log.log(epoch=2, loss=0.25)
    assert (tmp_path / "m.csv").read_text() == "epoch,loss,val\n1,0.5,0.25\n2,0.25,\n"
    with pytest.raises(ValueError, match=r"columns \['new'\] are not in the CSV header"):
        log.log(epoch=3, new=1)
    again = RunLogger(tmp_path / "m.csv", append=True)
    # The earlier rows are read back (numbers as floats, empty cells left out), so a plot after
    # a resume draws the whole run.
    assert again.rows == [{"epoch": 1.0, "loss": 0.5, "val": 0.25}, {"epoch": 2.0, "loss": 0.25}]
    again.log(epoch=3, loss=0.125)
    assert (tmp_path / "m.csv").read_text().endswith("3,0.125,\n")
    jl = RunLogger(tmp_path / "m.jsonl")
    jl.log(step=1, loss=1.0)
    jl.log(step=2, acc=0.5)
    lines = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert lines == [{"step": 1, "loss": 1.0}, {"step": 2, "acc": 0.5}]
    assert RunLogger(tmp_path / "m.jsonl", append=True).rows == lines
    with pytest.raises(ValueError, match=".csv or .jsonl"):
        RunLogger(tmp_path / "m.txt")


def test_plot_writes_a_png(tmp_path):
    log = RunLogger(tmp_path / "m.csv")
    for i in range(5):
        log.log(epoch=i, train=1.0 / (i + 1), val=1.5 / (i + 1))
    assert log.plot(tmp_path / "curves.png", "epoch", ["train", "val"]) == tmp_path / "curves.png"
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_logger_writes_config_and_summary_next_to_the_metrics(tmp_path):
    log = RunLogger(tmp_path / "run" / "metrics.csv")
    log.write_config({"lr": 0.001, "out_dir": tmp_path / "run"})
    log.write_summary({"val_loss": 0.25})
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == {
        "lr": 0.001, "out_dir": str(tmp_path / "run")}
    assert json.loads((tmp_path / "run" / "summary.json").read_text()) == {"val_loss": 0.25}


def test_existing_run_files_lists_what_a_new_run_would_replace(tmp_path):
    assert existing_run_files(tmp_path / "missing") == []
    (tmp_path / "metrics.csv").write_text("step\n")
    (tmp_path / "best.safetensors").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("mine")
    assert existing_run_files(tmp_path, RUN_FILES + ("best.safetensors",)) == [
        tmp_path / "metrics.csv", tmp_path / "best.safetensors"]


def test_progress_is_tqdm_and_quiet_off_a_terminal(capsys):
    bar = progress(range(5), desc="x")  # pytest captures the output: not a terminal
    assert isinstance(bar, tqdm)
    assert list(bar) == [0, 1, 2, 3, 4]
    assert capsys.readouterr().err == ""
    shown = progress(range(3), desc="train", disable=False)
    shown.set_postfix(loss=0.5)
    assert list(shown) == [0, 1, 2]
    err = capsys.readouterr().err
    assert "train" in err and "3/3" in err and "loss=0.5" in err
