"""A progress bar for long loops: tqdm when it is installed, else a small built-in one.

Both stay quiet when the output is not a terminal (logs, CI, a test capturing stdout), so a
progress bar never fills a log file with carriage returns.
"""

from __future__ import annotations

import sys
import time


def progress(iterable=None, total: int | None = None, desc: str = "", disable: bool | None = None):
    """Wrap ``iterable`` in a progress bar. ``disable=None`` means: show it only on a terminal.
    The result also has ``set_postfix(**values)`` (e.g. the current loss) and ``close()``."""
    if disable is None:
        disable = not (sys.stdout.isatty() and sys.stderr.isatty())
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return SimpleProgress(iterable, total, desc, disable)
    return tqdm(iterable, total=total, desc=desc, disable=disable, dynamic_ncols=True)


class SimpleProgress:
    """``desc  37% 370/1000  12.5 it/s  loss=0.123`` redrawn on one stderr line, 10x a second."""

    def __init__(self, iterable=None, total=None, desc="", disable=False):
        self.iterable, self.desc, self.disable = iterable, desc, disable
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.n, self.postfix = total, 0, ""
        self.start = self.last_draw = time.perf_counter()

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if not self.disable and (now - self.last_draw > 0.1 or self.n == self.total):
            self.last_draw = now
            self._draw(now)

    def set_postfix(self, **values) -> None:
        self.postfix = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                 for k, v in values.items())

    def _draw(self, now: float) -> None:
        rate = self.n / max(now - self.start, 1e-9)
        done = f"{100 * self.n / self.total:3.0f}% {self.n}/{self.total}" if self.total \
            else f"{self.n}"
        sys.stderr.write(f"\r{self.desc}  {done}  {rate:.1f} it/s  {self.postfix}\033[K")
        sys.stderr.flush()

    def close(self) -> None:
        if not self.disable and self.n:
            self._draw(time.perf_counter())
            sys.stderr.write("\n")
            self.disable = True  # draw the final line once
