"""Keyframe imputer inputs: key index parsing and every bad input the issue lists, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from agents.inbetween.imputer import prepare
from agents.inbetween.keys import InbetweenInputError, even_indices, parse_key_indices


def _key(size: tuple[int, int] = (64, 64), x: int = 20) -> np.ndarray:
    img = np.ones(size + (3,), np.float32)
    img[10:50, x:x + 3] = 0.0
    return img


def test_parses_a_comma_list_and_even_spacing() -> None:
    assert parse_key_indices("0,6,14,24", 4, 25, 1000) == [0, 6, 14, 24]
    assert parse_key_indices(" 0 , 6 ", 2, 7, 1000) == [0, 6]
    assert parse_key_indices("", 3, 9, 1000) == [0, 4, 8]
    assert parse_key_indices("even", 4, 10, 1000) == even_indices(4, 10) == [0, 3, 6, 9]


@pytest.mark.parametrize(("spec", "n", "length", "name", "words"), [
    ("6,0", 2, 10, "key_indices", "not increasing"),
    ("0,3,3", 3, 10, "key_indices", "twice"),
    ("-1,4", 2, 10, "key_indices", "negative"),
    ("0,12", 2, 10, "length", "shorter than the keys' span"),
    ("0,5", 3, 10, "key_indices", "2 indices given for 3"),
    ("0,x", 2, 10, "key_indices", "not a whole frame number"),
    ("0,,4", 2, 10, "key_indices", "empty entry"),
    ("0", 1, 10, "keyframes", "at least two keys"),
    ("0,4", 2, 1, "length", "at least 2"),
    ("0,4", 2, 5000, "length", "over the cap"),
])
def test_bad_indices_name_the_input(spec: str, n: int, length: int, name: str, words: str) -> None:
    with pytest.raises(InbetweenInputError) as err:
        parse_key_indices(spec, n, length, 1000)
    msg = str(err.value)
    assert msg.startswith(name + ":") and words in msg and "\n" not in msg


def test_keys_of_different_sizes_fail() -> None:
    with pytest.raises(InbetweenInputError, match=r"^keyframes: frame 1 is 80x64 but frame 0 is 64x64"):
        prepare([_key(), _key((64, 80))], "0,4", 5)


def test_blank_key_fails() -> None:
    with pytest.raises(InbetweenInputError, match=r"^keyframes: key 1 \(frame 4\) is blank"):
        prepare([_key(), np.ones((64, 64, 3), np.float32)], "0,4", 5)


def test_external_frames_must_match_the_length() -> None:
    with pytest.raises(InbetweenInputError, match=r"^frames: 3 upstream frames but length is 5"):
        prepare([_key(), _key(x=30)], "0,4", 5, "external", external=[_key()] * 3)
    with pytest.raises(InbetweenInputError, match=r"^frames: the external mode needs"):
        prepare([_key(), _key(x=30)], "0,4", 5, "external")


def test_bad_mode_pixels_and_masks_fail() -> None:
    with pytest.raises(InbetweenInputError, match=r"^mode: 'morph' is not one of"):
        prepare([_key(), _key(x=30)], "0,4", 5, "morph")
    bad = _key()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InbetweenInputError, match=r"^keyframes: frame 0 has pixels outside 0..1"):
        prepare([bad, _key(x=30)], "0,4", 5)
    with pytest.raises(InbetweenInputError, match=r"^mask: 1 masks for 2 keyframes"):
        prepare([_key(), _key(x=30)], "0,4", 5, masks=[np.zeros((64, 64), np.float32)])
