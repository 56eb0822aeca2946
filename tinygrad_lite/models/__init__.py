"""Models built from the package's layers: the tiny GPT (``models/gpt.py``)."""

from .gpt import GPT, GPTConfig, estimate_loss, load_gpt, resume_gpt, save_gpt_checkpoint

__all__ = ["GPT", "GPTConfig", "estimate_loss", "load_gpt", "resume_gpt", "save_gpt_checkpoint"]
