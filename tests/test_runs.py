"""python -m tinygrad_lite.runs compare: two run folders built here with RunLogger, compared
in-process; the PNG, the settings table, the shared settings and the final metrics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tinygrad_lite import runs
from tinygrad_lite.train import RunLogger

PNG = b"\x89PNG\r\n\x1a\n"


def make_run(folder, lr: float, losses: list, summary: bool = True):
    log = RunLogger(folder / "metrics.csv")
    log.write_config({"lr": lr, "batch_size": 2, "prompt": "\n", "out_dir": str(folder),
                      "overwrite": True})
    for step, (train, val) in enumerate(losses):
        log.log(step=10 * step, train_loss=train, val_loss=val, lr=lr,
                best_val_loss=min(v for _, v in losses[:step + 1]))
    if summary:
        log.write_summary({"steps": 10 * (len(losses) - 1), "val_loss": losses[-1][1],
                           "theta": [1.0, 2.0]})
    return folder


@pytest.fixture
def two_runs(tmp_path):
    a = make_run(tmp_path / "a", 1e-3, [(5.0, 5.5), (3.0, 3.5), (2.0, 2.75)])
    b = make_run(tmp_path / "b", 3e-3, [(5.0, 5.5), (2.5, 3.0), (1.5, 2.5)])
    return a, b


def test_compare_plots_the_curves_and_prints_settings_and_final_metrics(two_runs, tmp_path,
                                                                        capsys):
    a, b = two_runs
    out = tmp_path / "cmp.png"
    assert runs.main(["compare", str(a), str(b), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["setting", str(a), str(b)]
    assert lines[1].split() == ["lr", "0.001", "0.003"]  # the only setting that differs
    # out_dir is each column's name, overwrite how the run was started: both left out
    assert lines[2] == "common: batch_size=2, prompt='\\n'"
    final = lines.index(next(line for line in lines if line.startswith("final")))
    assert lines[final].split() == ["final", str(a), str(b)]
    assert lines[final + 1].split() == ["steps", "20", "20"]
    assert lines[final + 2].split() == ["val_loss", "2.75", "2.5"]
    assert not any("theta" in line for line in lines)  # lists are left out of the table
    assert lines[-1] == f"curves of train_loss, val_loss: {out}"  # not the running best


def test_a_run_without_summary_shows_its_last_logged_values(two_runs, tmp_path, capsys):
    a, _ = two_runs
    c = make_run(tmp_path / "c", 1e-3, [(4.0, 4.5), (3.25, 3.75)], summary=False)
    runs.main(["compare", str(a), str(c), "--out", str(tmp_path / "x.png"), "--metric",
               "val_loss"])
    text = capsys.readouterr().out
    assert "settings: all the same" in text
    row = next(line for line in text.splitlines() if line.startswith("val_loss"))
    assert row.split() == ["val_loss", "2.75", "3.75"]
    assert f"(no summary.json in {c}: its last logged values)" in text
    assert "curves of val_loss:" in text


@pytest.mark.parametrize("damage, message", [
    (lambda folder: (folder / "metrics.csv").unlink(), "has no metrics.csv: not a run folder"),
    (lambda folder: (folder / "metrics.csv").write_text("step,loss\n"), "holds no rows yet"),
    (lambda folder: (folder / "config.json").write_text("{oops"), "config.json is not valid "
                                                                   "JSON"),
])
def test_a_folder_that_is_not_a_run_is_a_clear_error(two_runs, tmp_path, capsys, damage,
                                                     message):
    a, b = two_runs
    damage(b)
    with pytest.raises(SystemExit) as exit_info:
        runs.main(["compare", str(a), str(b), "--out", str(tmp_path / "x.png")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_missing_folder_and_unknown_metric_are_clear_errors(two_runs, tmp_path, capsys):
    a, b = two_runs
    with pytest.raises(SystemExit):
        runs.main(["compare", str(a), str(tmp_path / "nope")])
    assert f"compare: {tmp_path / 'nope'} is not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        runs.main(["compare", str(a), str(b), "--metric", "accuracy"])
    assert (f"compare: {a}/metrics.csv has no column accuracy (it has step, train_loss, "
            f"val_loss, lr, best_val_loss)") in capsys.readouterr().err


def test_compare_reads_the_folders_the_examples_write(tmp_path, capsys):
    """A run folder as RunLogger writes it round-trips through read_run."""
    a = make_run(tmp_path / "a", 1e-3, [(5.0, 5.5), (3.0, 3.5)])
    run = runs.read_run(a)
    assert run.columns == ["step", "train_loss", "val_loss", "lr", "best_val_loss"]
    assert run.rows[1] == {"step": 10.0, "train_loss": 3.0, "val_loss": 3.5, "lr": 1e-3,
                           "best_val_loss": 3.5}
    assert run.config["lr"] == 1e-3
    assert run.summary == json.loads((a / "summary.json").read_text())


def test_every_flag_of_compare_has_a_help_text_with_its_default():
    parser = runs.build_parser()
    compare = parser._subparsers._group_actions[0].choices["compare"]
    formatter = compare._get_formatter()
    for action in compare._actions:
        assert action.help, action.dest
        if action.option_strings and action.dest != "help":
            assert "(default: " in formatter._expand_help(action), action.dest


def test_the_installed_commands_work_in_the_repository_root(two_runs, tmp_path):
    # After a non-editable `pip install .`, `python -m tinygrad_lite.runs` in the repository
    # root finds the source folder (no compiled kernels) first; the installed programs do not.
    bin_dir = Path(sys.executable).parent
    root = Path(__file__).resolve().parent.parent
    a, b = two_runs
    done = subprocess.run([str(bin_dir / "tgl-runs"), "compare", str(a), str(b), "--out",
                           str(tmp_path / "cmp.png")], cwd=root, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split() == ["lr", "0.001", "0.003"]
    assert (tmp_path / "cmp.png").read_bytes()[:8] == PNG
    done = subprocess.run([str(bin_dir / "tgl-viz"), "--help"], cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--gpt" in done.stdout
