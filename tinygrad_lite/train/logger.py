"""A run logger: one row of metrics per call, appended to a CSV or JSON Lines file, the run's
settings and final results as JSON next to it, and the train/validation curves drawn to a PNG.

A run folder, as every example writes it (and ``python -m tinygrad_lite.runs compare`` reads it)::

    config.json    the settings of the run          (RunLogger.write_config)
    metrics.csv    one row per evaluation            (RunLogger.log)
    summary.json   the final metrics and speed       (RunLogger.write_summary)
    loss.png       the loss curves                   (RunLogger.plot)

Rows are appended and flushed one whole line at a time, so a crash loses at most the line being
written and the file is always readable; the JSON files and the PNG are written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from .checkpoint import atomic_write

RUN_FILES = ("config.json", "metrics.csv", "summary.json", "loss.png")


def existing_run_files(folder, names=RUN_FILES) -> list[Path]:
    """The files among ``names`` that already exist in ``folder``: what a new run writing those
    names there would destroy."""
    folder = Path(folder)
    return [folder / name for name in names if (folder / name).exists()]


def write_json(path, values: dict) -> Path:
    """Write ``values`` as indented JSON, atomically (Paths become strings)."""
    text = json.dumps(values, indent=2, default=str) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return Path(path)


def _cell(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def read_metrics(path) -> tuple[list[str] | None, list[dict]]:
    """The columns and rows of a metrics file written by ``RunLogger``: for ``.csv`` numbers come
    back as floats and empty cells are left out of their row; ``.jsonl`` rows as stored (and
    columns None)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        lines = path.read_text(encoding="utf-8").splitlines()
        return None, [json.loads(line) for line in lines if line.strip()]
    with open(path, newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    if not table:
        return None, []
    columns = table[0]
    rows = [{k: _cell(v) for k, v in zip(columns, line) if v != ""} for line in table[1:]
            if line]
    return columns, rows


class RunLogger:
    """``log = RunLogger("runs/x/metrics.csv"); log.log(epoch=1, train_loss=0.5, val_loss=0.6)``.

    The format follows the suffix: ``.csv`` (columns fixed by the first row; later rows may leave
    columns empty but may not add new ones) or ``.jsonl`` (one JSON object per line). An existing
    file is replaced unless ``append=True``.
    """

    def __init__(self, path, append: bool = False):
        self.path = Path(path)
        self.format = {".csv": "csv", ".jsonl": "jsonl"}.get(self.path.suffix)
        if self.format is None:
            raise ValueError(f"RunLogger: the file name must end in .csv or .jsonl, got "
                             f"{self.path.name!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict] = []
        self.columns: list[str] | None = None
        if append and self.path.exists():
            # The earlier rows too, so that plot() after a resume draws the whole run.
            columns, self.rows = read_metrics(self.path)
            self.columns = columns if self.format == "csv" else None
        elif not append:
            self.path.write_text("")

    def log(self, **metrics) -> None:
        """Append one row (numbers, strings; one-element tensors are converted to floats)."""
        row = {k: (float(v) if hasattr(v, "item") else v) for k, v in metrics.items()}
        self.rows.append(row)
        if self.format == "jsonl":
            line = json.dumps(row) + "\n"
        else:
            header = ""
            if self.columns is None:
                self.columns = list(row)
                header = ",".join(self.columns) + "\n"
            unknown = [k for k in row if k not in self.columns]
            if unknown:
                raise ValueError(f"RunLogger: columns {unknown} are not in the CSV header "
                                 f"{self.columns}; log every column in the first row, or use a "
                                 f".jsonl file")
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerow([row.get(k, "") for k in
                                                             self.columns])
            line = header + buffer.getvalue()
        with open(self.path, "a", newline="") as f:
            f.write(line)
            f.flush()

    def write_config(self, config: dict) -> Path:
        """The run's settings as ``config.json`` in the metrics file's folder."""
        return write_json(self.path.parent / "config.json", config)

    def write_summary(self, summary: dict) -> Path:
        """The run's final metrics as ``summary.json`` in the metrics file's folder."""
        return write_json(self.path.parent / "summary.json", summary)

    def plot(self, path, x: str, ys, title: str = "", logy: bool = False) -> Path:
        """Draw the columns ``ys`` against ``x`` into a PNG at ``path``; return the path."""
        from matplotlib.figure import Figure  # here, not at the top: importing it takes ~0.3 s

        ys = [ys] if isinstance(ys, str) else list(ys)
        fig = Figure(figsize=(7, 4))  # no pyplot: no global figure state, no GUI backend
        ax = fig.subplots()
        for y in ys:
            points = [(r[x], r[y]) for r in self.rows if x in r and isinstance(r.get(y), float)
                      and math.isfinite(r[y])]
            if points:  # a sparse series (evaluations only at the ends) shows its points
                ax.plot(*zip(*points), marker="o" if len(points) <= 30 else None, label=y)
        ax.set_xlabel(x)
        if logy:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
        return Path(path)
