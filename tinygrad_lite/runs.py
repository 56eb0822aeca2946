"""Compare training runs, as experiment trackers do: the loss curves of several run folders in
one PNG, and their settings and final metrics side by side.

    python -m tinygrad_lite.runs compare runs/a runs/b [...] [--out compare.png] [--metric NAME]

A run folder is what every example writes (``tinygrad_lite.train.RunLogger``): ``metrics.csv``
(one row per evaluation, the first column the step or epoch), ``config.json`` (the settings) and
``summary.json`` (the final metrics). Only ``metrics.csv`` is required. The output lists the
settings that differ between the runs as a table, the ones they share on a few lines, and the
final metrics as a table (from ``summary.json``, or the last logged values when a run has none).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from .train.checkpoint import atomic_write
from .train.cli import make_parser
from .train.logger import read_metrics

LINE_STYLES = ("-", "--", ":", "-.")
SKIPPED_SETTINGS = ("out_dir", "overwrite")  # the folder itself (each column's name), and how
#                                              it was started, not what was trained


class RunFolderError(ValueError):
    """A folder that is not a readable run folder."""


@dataclass
class Run:
    name: str                       # the folder as the user wrote it
    columns: list[str]              # of metrics.csv; the first is the x axis (step, epoch)
    rows: list[dict]                # numbers as floats; a row leaves out its empty cells
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunFolderError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(values, dict):
        raise RunFolderError(f"{path} holds a {type(values).__name__}, not a JSON object")
    return values


def read_run(folder) -> Run:
    """Read one run folder; a missing folder or ``metrics.csv`` raises ``RunFolderError``."""
    path = Path(folder)
    if not path.is_dir():
        raise RunFolderError(f"{folder} is not a folder")
    metrics = path / "metrics.csv"
    if not metrics.is_file():
        raise RunFolderError(f"{folder} has no metrics.csv: not a run folder (the examples write "
                             f"config.json, metrics.csv and summary.json into their --out-dir)")
    columns, rows = read_metrics(metrics)
    if not rows:
        raise RunFolderError(f"{metrics} holds no rows yet")
    return Run(str(folder), columns, rows, _read_json(path / "config.json"),
               _read_json(path / "summary.json"))


def default_metrics(runs: list[Run]) -> list[str]:
    """The loss-like columns (``*loss``, ``*mse``; not the running ``best_*``) every run logged,
    in the first run's order."""
    shared = [c for c in runs[0].columns[1:] if all(c in r.columns for r in runs)]
    return [c for c in shared if c.endswith(("loss", "mse")) and not c.startswith("best_")]


def curve(run: Run, metric: str) -> tuple[list, list]:
    x = run.columns[0]
    points = [(row[x], row[metric]) for row in run.rows
              if isinstance(row.get(x), float) and isinstance(row.get(metric), float)
              and math.isfinite(row[metric])]
    return [p[0] for p in points], [p[1] for p in points]


def plot_runs(runs: list[Run], metrics: list[str], out) -> Path:
    """One color per run, one line style per metric, in one PNG at ``out``."""
    from matplotlib.figure import Figure  # here, not at the top: importing it takes ~0.3 s

    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    plotted = []
    for i, run in enumerate(runs):
        for j, metric in enumerate(metrics):
            xs, ys = curve(run, metric)
            plotted += ys
            ax.plot(xs, ys, LINE_STYLES[j % len(LINE_STYLES)], color=f"C{i % 10}",
                    label=f"{run.name}: {metric}")
    if plotted and min(plotted) > 0 and max(plotted) >= 10 * min(plotted):
        ax.set_yscale("log")  # curves spanning decades
    ax.set_xlabel(" / ".join(dict.fromkeys(run.columns[0] for run in runs)))
    ax.set_title(f"{len(runs)} runs: {', '.join(metrics)}")
    ax.legend(fontsize="small")
    fig.tight_layout()
    atomic_write(out, lambda f: fig.savefig(f, format="png", dpi=100))
    return Path(out)


def format_value(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
        text = text if text.isprintable() else repr(text)  # a prompt "\n" stays on its line
        return text if len(text) <= 32 else text[:29] + "..."
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    return f"{value:.4g}"


def format_table(first: str, keys: list[str], runs: list[Run], values) -> str:
    """A table: one row per key, one column per run; ``values(run, key)`` gives each cell."""
    header = [first] + [run.name for run in runs]
    body = [[key] + [format_value(values(run, key)) for run in runs] for key in keys]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(line, widths)))
             for line in [header] + body]
    return "\n".join(lines)


def _setting(run: Run, key: str):
    """A comparable form of one setting (None when the run lacks it)."""
    return json.dumps(run.config[key], sort_keys=True, default=str) if key in run.config else None


def compare_configs(runs: list[Run]) -> str:
    """The settings that differ as a table; the shared ones compactly below it."""
    keys = list(dict.fromkeys(k for run in runs for k in run.config if k not in
                              SKIPPED_SETTINGS))
    differ = [k for k in keys if len({_setting(run, k) for run in runs}) > 1]
    common = [k for k in keys if k not in differ]
    parts = []
    if differ:
        parts.append(format_table("setting", differ, runs, lambda run, k: run.config.get(k)))
    else:
        parts.append("settings: all the same" if keys else "settings: no config.json")
    if common:
        shared = ", ".join(f"{k}={format_value(runs[0].config[k])}" for k in common)
        parts.append(textwrap.fill(shared, width=100, initial_indent="common: ",
                                   subsequent_indent="        "))
    return "\n".join(parts)


def final_metrics(run: Run) -> dict:
    """``summary.json``'s numbers and strings, or the last logged value of each column."""
    if run.summary:
        return {k: v for k, v in run.summary.items() if not isinstance(v, (list, dict))}
    last = {}
    for row in run.rows:
        last.update(row)
    return last


def compare(folders, out="compare.png", metrics=None) -> str:
    """Plot the runs in ``folders`` into ``out`` and return the text report."""
    runs = [read_run(folder) for folder in folders]
    metrics = list(metrics) if metrics else default_metrics(runs)
    if not metrics:
        raise RunFolderError("the runs share no loss column (*loss, *mse) to plot: name one "
                             "with --metric (columns: "
                             + "; ".join(f"{r.name}: {', '.join(r.columns)}" for r in runs) + ")")
    for run in runs:
        missing = [m for m in metrics if m not in run.columns]
        if missing:
            raise RunFolderError(f"{run.name}/metrics.csv has no column {', '.join(missing)} "
                                 f"(it has {', '.join(run.columns)})")
    plot_runs(runs, metrics, out)
    finals = {run.name: final_metrics(run) for run in runs}
    keys = list(dict.fromkeys(k for values in finals.values() for k in values))
    no_summary = [run.name for run in runs if not run.summary]
    note = (f"\n(no summary.json in {', '.join(no_summary)}: its last logged values)"
            if no_summary else "")
    return "\n\n".join([
        compare_configs(runs),
        format_table("final", keys, runs, lambda run, k: finals[run.name].get(k)) + note,
        f"curves of {', '.join(metrics)}: {out}"])


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__.split("\n\n")[0])
    parser.prog = "python -m tinygrad_lite.runs"
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser("compare", help="overlay the curves of run folders, tabulate their "
                                            "settings and final metrics",
                            description="Overlay the loss curves of several run folders in one "
                                        "PNG; print their settings and final metrics.",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("folders", nargs="+", help="run folders (each with a metrics.csv)")
    p.add_argument("--out", type=Path, default="compare.png", help="the PNG to write")
    p.add_argument("--metric", action="append", default=None,
                   help="a metrics.csv column to plot; repeat for several (None: every "
                        "*loss and *mse column the runs share)")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        report = compare(args.folders, args.out, args.metric)
    except RunFolderError as e:
        parser.error(f"compare: {e}")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
