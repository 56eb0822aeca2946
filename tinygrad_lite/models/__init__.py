"""Models built from the package's layers: the tiny GPT (``models/gpt.py``) and the rules that
pick its next token (``models/sampling.py``)."""

from .gpt import GPT, GPTConfig
from .sampling import sample_next

__all__ = ["GPT", "GPTConfig", "sample_next"]
