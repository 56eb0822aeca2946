"""``raises(exc, *words)``: pytest.raises that also checks that every word appears in the error
message (case-sensitive) -- the tests of bad input assert what the message names, not only the
exception class."""

from __future__ import annotations

import pytest


def raises(exc, *words):
    class _Check:
        def __enter__(self):
            self.ctx = pytest.raises(exc)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *args):
            handled = self.ctx.__exit__(*args)
            message = str(self.info.value)
            for w in words:
                assert w in message, f"{w!r} not in error message: {message!r}"
            return handled
    return _Check()
