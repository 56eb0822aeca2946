"""The progress bar of the examples: tqdm, quiet when the output is not a terminal (logs, CI, a
test capturing output), so a bar never fills a log file with carriage returns.

Lines printed while a bar is drawn go through ``tqdm.write(line)``: it clears the bar, prints the
line and redraws the bar below it, so the two never collide.
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def progress(iterable=None, total: int | None = None, desc: str = "", disable: bool | None = None):
    """``tqdm(iterable, total, desc)``; ``disable=None`` means: show it only on a terminal."""
    if disable is None:
        disable = not (sys.stdout.isatty() and sys.stderr.isatty())
    return tqdm(iterable, total=total, desc=desc, disable=disable, dynamic_ncols=True)
