"""A run logger: one row of metrics per call, appended to a CSV or JSON Lines file, and the
train/validation curves drawn to a PNG when matplotlib is installed.

Rows are appended and flushed one whole line at a time, so a crash loses at most the line being
written and the file is always readable; ``plot`` writes its PNG atomically.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from .checkpoint import atomic_write


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
        if append and self.path.exists() and self.format == "csv":
            with open(self.path, newline="") as f:
                self.columns = next(csv.reader(f), None)
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

    def plot(self, path, x: str, ys, title: str = "", logy: bool = False) -> Path | None:
        """Draw the columns ``ys`` against ``x`` into a PNG at ``path``. Returns the path, or
        None (doing nothing) when matplotlib is not installed."""
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return None
        ys = [ys] if isinstance(ys, str) else list(ys)
        fig, ax = plt.subplots(figsize=(7, 4))
        for y in ys:
            points = [(r[x], r[y]) for r in self.rows if x in r and isinstance(r.get(y), float)
                      and math.isfinite(r[y])]
            if points:
                ax.plot(*zip(*points), label=y)
        ax.set_xlabel(x)
        if logy:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
        plt.close(fig)
        return Path(path)
