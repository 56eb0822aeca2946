"""What the example scripts share on the command line: argparse ``type=`` callables that refuse
bad values before any training starts, and the check that a new run destroys no earlier one.

A bad value becomes an ordinary argparse error (exit code 2, the flag and the value named)::

    $ python examples/sin_fit.py --lr nan
    sin_fit.py: error: argument --lr: must be a finite number > 0, got 'nan'

    parser.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate")
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from .logger import existing_run_files


def _number(text: str, kind, what: str):
    """``kind(text)`` (int or float), or an argparse error that says what was expected."""
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (epochs, steps, batch sizes, widths)."""
    value = _number(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (counts where 0 means "none", e.g. tokens to sample)."""
    value = _number(text, int, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates)."""
    value = _number(text, float, "a finite number > 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (weight decay, momentum, a clipping norm where 0 means off)."""
    value = _number(text, float, "a finite number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def probability(text: str) -> float:
    """A number in [0, 1): a dropout rate (1 would drop everything)."""
    value = _number(text, float, "a number in [0, 1)")
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}")
    return value


def factor(text: str) -> float:
    """A number strictly between 0 and 1: a multiplicative decay such as ReduceLROnPlateau's."""
    value = _number(text, float, "a number strictly between 0 and 1")
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number strictly between 0 and 1, got "
                                         f"{text!r}")
    return value


def text_file(path_text: str) -> Path:
    """An existing, non-empty UTF-8 text file (a corpus). Read once here, so a binary or
    missing file is refused before the model is built."""
    path = Path(path_text)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise argparse.ArgumentTypeError(f"no such file: {path_text!r}") from None
    except IsADirectoryError:
        raise argparse.ArgumentTypeError(f"{path_text!r} is a directory, not a text file"
                                         ) from None
    except UnicodeDecodeError as e:
        raise argparse.ArgumentTypeError(
            f"{path_text!r} is not UTF-8 text (byte {e.start} is {e.object[e.start]:#04x}): "
            f"give a plain-text corpus") from None
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{path_text!r} is empty: there is nothing to train on")
    return path


def existing_file(path_text: str) -> Path:
    """A file that exists (a checkpoint to read)."""
    path = Path(path_text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {path_text!r}")
    return path


def add_run_folder_flags(parser: argparse.ArgumentParser, default: str,
                         resume: bool = False) -> None:
    """``--out-dir`` and ``--overwrite`` (and ``--resume`` when the example supports it)."""
    parser.add_argument("--out-dir", "--out", type=Path, default=default,
                        help="run folder: config.json, metrics.csv, summary.json, loss.png and "
                             "the checkpoints")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier run in --out-dir (without it, an existing run "
                             "is never touched)")
    if resume:
        parser.add_argument("--resume", action="store_true",
                            help="continue the run in --out-dir from its last.safetensors")


LAST_CHECKPOINT, BEST_CHECKPOINT = "last.safetensors", "best.safetensors"


def resume_checkpoint(out_dir: Path) -> Path:
    """The checkpoint ``--resume`` continues from: the run's ``last.safetensors``, or the
    ``last.npz`` of a run made by an earlier version (checkpoints were .npz files then; they
    still load, and the resumed run writes .safetensors)."""
    current, earlier = out_dir / LAST_CHECKPOINT, out_dir / "last.npz"
    return earlier if earlier.is_file() and not current.is_file() else current


def check_run_folder(parser: argparse.ArgumentParser, args: argparse.Namespace,
                     outputs) -> None:
    """Refuse (argparse error, exit 2) to start a new run over an earlier one in
    ``args.out_dir``: the files among ``outputs`` it would replace are listed, with the flags
    that allow it. ``--resume`` needs the run's last checkpoint (``resume_checkpoint``)."""
    resume = getattr(args, "resume", False)
    if resume and args.overwrite:
        parser.error("--resume continues the run in --out-dir and --overwrite replaces it: "
                     "give one of them")
    if resume:
        if not resume_checkpoint(args.out_dir).is_file():
            parser.error(f"--resume: there is no {args.out_dir / LAST_CHECKPOINT} to continue "
                         f"from (start a new run without --resume)")
        return
    existing = existing_run_files(args.out_dir, outputs)
    if existing and not args.overwrite:
        how = "--overwrite to replace it" + (", or --resume to continue it" if hasattr(
            args, "resume") else "") + ", or another --out-dir"
        parser.error(f"{args.out_dir} already holds a run; a new run would replace "
                     f"{', '.join(p.name for p in existing)}. Give {how}")


def decided_by_main_process(check) -> None:
    """Run ``check()`` -- argument checks that read the file system and may end the program
    with ``parser.error`` -- on rank 0 only, and make every rank follow its decision: go on, or
    exit with rank 0's exit status (rank 0 printed why). Under ``mpirun`` each rank checking
    for itself would race: rank 0 may already have started writing the run folder that another
    rank is still checking is free. In a world of 1 this is just ``check()``."""
    from .. import distributed
    if distributed.get_world_size() == 1:
        check()
        return
    stopped = None
    decision = np.zeros(2, dtype=np.int64)  # [rank 0 stopped, its exit status]
    if distributed.is_main_process():
        try:
            check()
        except SystemExit as e:  # tell the other ranks before leaving (they wait for it)
            stopped = e
            decision[:] = 1, (e.code if isinstance(e.code, int) else e.code is not None)
    distributed.broadcast(decision, src=0)
    if stopped is not None:
        raise stopped
    if decision[0]:
        sys.exit(int(decision[1]))


def make_parser(description: str) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` whose ``--help`` shows every flag's default."""
    return argparse.ArgumentParser(description=description,
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
