"""Issue 11 item 10, the measurement cases: a names list of the wrong length and tags that are not
text are named errors, not a bare IndexError / TypeError deep inside."""

from __future__ import annotations

import numpy as np
import pytest

from agents.measure.reference_compare import compare
from agents.measure.visual_analyst import analyse_batch

WHITE = np.full((64, 64, 3), 255, np.uint8)


@pytest.mark.parametrize("names", [["only one"], [], ["a", "b", "c", "d"]])
def test_analyse_batch_with_a_names_list_of_the_wrong_length_is_named(names: list[str]) -> None:
    with pytest.raises(ValueError, match=rf"names: expected 3 image names \(one per image\), got {len(names)}"):
        analyse_batch([WHITE, WHITE, WHITE], names)


def test_analyse_batch_with_a_name_that_is_not_text_is_named() -> None:
    with pytest.raises(ValueError, match="names: .* not text"):
        analyse_batch([WHITE, WHITE], ["a", 7])  # type: ignore[list-item]


@pytest.mark.parametrize(("kwargs", "said"), [
    ({"sketch_tags": 123}, "sketch_tags: expected a comma-separated text or a list of tags, got int"),
    ({"reference_tags": 4.5}, "reference_tags: expected a comma-separated text or a list of tags, got float"),
    ({"sketch_tags": ["1girl", 3]}, "sketch_tags: expected tags as text, got a int among them"),
    ({"sketch_tags": b"1girl"}, "sketch_tags: expected a comma-separated text"),
])
@pytest.mark.parametrize("reference", [None, WHITE])
def test_compare_with_tags_that_are_not_text_is_named(kwargs: dict, said: str, reference: object) -> None:
    with pytest.raises(ValueError, match=said):
        compare(WHITE, reference, **kwargs)


def test_compare_still_takes_text_lists_and_generators() -> None:
    assert compare(WHITE, WHITE, sketch_tags=(t for t in ["1girl"]), reference_tags="1girl").present
