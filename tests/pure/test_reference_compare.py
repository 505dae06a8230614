"""Reference Compare on the shared real images, synthetic faces, tag lists and embedding vectors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from agents.measure.accessory_conflict import accessory_conflict, head_blobs
from agents.measure.analysis_types import ReferenceReport
from agents.measure.embeddings import EmbeddingError, cosine_similarity01
from agents.measure.imaging import ImageInputError, load_image, to_rgb_float
from agents.measure.reference_compare import CR_THRESHOLD, IMAGE_CONFLICT_WEIGHT, ReferenceInputError, compare
from agents.measure.tag_conflict import parse_tags, text_conflict


@pytest.fixture(scope="module")
def img(fixture_data):
    cache: dict[str, np.ndarray] = {}

    def get(rel: str) -> np.ndarray:
        if rel not in cache:
            cache[rel] = load_image(fixture_data / rel)
        return cache[rel]

    return get


# --- real images ----------------------------------------------------------------------------

@pytest.mark.parametrize("ref", ["references/madoka.jpg", "references/saber.png"])
def test_colored_references_raise_cr(img, ref) -> None:
    r = compare(img("sketches/user_1.png"), img(ref))
    assert r.colored is True
    assert r.saturation >= CR_THRESHOLD


def test_line_art_reference_is_not_colored(img) -> None:
    r = compare(img("sketches/user_1.png"), img("references/madoka_lineart.png"))
    assert r.colored is False
    assert r.saturation < CR_THRESHOLD


def test_lineart_closer_to_its_colour_original_than_to_another_illustration(img) -> None:
    line = img("references/madoka_lineart.png")
    same = compare(line, img("references/madoka.jpg"))
    other = compare(line, img("references/saber.png"))
    assert same.similarity_source == other.similarity_source == "classical"
    assert same.similarity > other.similarity + 0.2


def test_similarity_of_an_image_with_itself_is_one_and_symmetric(img) -> None:
    a, b = img("sketches/user_3.png"), img("references/saber.png")
    assert compare(a, a).similarity == pytest.approx(1.0, abs=1e-6)
    assert compare(a, b).similarity == pytest.approx(compare(b, a).similarity, abs=1e-9)


def test_style_distance_zero_for_itself_and_larger_for_a_photo(img) -> None:
    sketch = img("sketches/user_1.png")
    self_d = compare(sketch, sketch).style_distance
    photo_d = compare(sketch, img("references/man_photo.png")).style_distance
    assert self_d == pytest.approx(0.0, abs=1e-9)
    assert photo_d > 0.2
    assert 0.0 <= photo_d <= 1.0


def test_report_fields_are_bounded_and_r_follows_the_seed_formula(img) -> None:
    r = compare(img("sketches/human_line.png"), img("references/madoka.jpg"),
                sketch_tags="1girl, glasses", reference_tags="1girl")
    assert r.present
    for name in ("similarity", "text_conflict", "image_conflict", "conflict_penalty", "style_distance",
                 "accessory_conflict", "reference_final_score", "saturation"):
        v = getattr(r, name)
        assert 0.0 <= v <= 1.0 and np.isfinite(v), name
    assert r.conflict_penalty == pytest.approx(max(r.text_conflict, r.image_conflict))
    assert r.image_conflict == pytest.approx(IMAGE_CONFLICT_WEIGHT * r.accessory_conflict)
    assert r.reference_final_score == pytest.approx(r.similarity * (1 - r.conflict_penalty))
    assert ReferenceReport.from_dict(r.to_dict()) == r


def test_no_reference_gives_absent_report(img) -> None:
    r = compare(img("sketches/user_1.png"), None)
    assert r.present is False
    assert r.reference_final_score == 0.0 and r.similarity == 0.0
    assert "no reference" in r.reason


# --- accessory conflict on synthetic faces ----------------------------------------------------

def _face(glasses: bool, shift: int = 0) -> np.ndarray:
    img = np.full((320, 320, 3), 255, np.uint8)
    cx, cy = 160 + shift, 120
    cv2.circle(img, (cx, cy), 80, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.polylines(img, [np.array([[cx - 70, 300], [cx - 40, 200], [cx + 40, 200], [cx + 70, 300]], np.int32)],
                  False, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.line(img, (cx - 20, cy + 45), (cx + 20, cy + 45), (0, 0, 0), 2, cv2.LINE_AA)
    for ex in (cx - 32, cx + 32):
        if glasses:
            cv2.ellipse(img, (ex, cy), (20, 13), 0, 0, 360, (10, 10, 10), -1, cv2.LINE_AA)
        else:
            cv2.circle(img, (ex, cy), 7, (0, 0, 0), 2, cv2.LINE_AA)
    if glasses:
        cv2.line(img, (cx - 12, cy), (cx + 12, cy), (0, 0, 0), 3)
    return img


def test_dark_glasses_against_a_bare_face_raise_ac() -> None:
    with_g = head_blobs(to_rgb_float(_face(True)))
    without = head_blobs(to_rgb_float(_face(False)))
    assert with_g.count >= 2 and without.count == 0
    assert accessory_conflict(with_g, without) > 0.8
    report = compare(_face(False), _face(True))
    assert report.accessory_conflict > 0.8
    assert report.conflict_penalty >= IMAGE_CONFLICT_WEIGHT * 0.8
    assert "accessory" in report.reason


@pytest.mark.parametrize("glasses", [True, False])
def test_ac_is_zero_for_identical_and_near_zero_for_shifted_faces(glasses) -> None:
    assert compare(_face(glasses), _face(glasses)).accessory_conflict == 0.0
    assert compare(_face(glasses), _face(glasses, shift=25)).accessory_conflict < 0.15


def test_ac_is_zero_for_identical_real_images(img) -> None:
    for rel in ("references/man_photo.png", "sketches/bag_scribble.png"):
        assert compare(img(rel), img(rel)).accessory_conflict == 0.0


# --- text conflict ---------------------------------------------------------------------------

def test_parse_tags_normalises() -> None:
    assert parse_tags(" 1girl, Black_Hair , (glasses:1.2),, black hair") == ["1girl", "black hair", "glasses"]


@pytest.mark.parametrize(("a", "b", "word"), [
    ("1girl, solo", "2girls", "count"),
    ("1girl", "1boy", "different characters"),
    ("1girl", "multiple girls", "count"),
    ("1girl, black hair", "1girl, blonde hair", "hair"),
    ("1girl, blue eyes", "1girl, red eyes", "eyes"),
    ("1girl, glasses", "1girl", "glasses"),
    ("1girl", "1girl, hat, eyepatch", "eyepatch"),
])
def test_contradicting_tags_conflict(a, b, word) -> None:
    tc = text_conflict(a, b)
    assert tc.score > 0.3
    assert any(word in r for r in tc.reasons)


@pytest.mark.parametrize(("a", "b"), [
    ("1girl, black hair, glasses", "1girl, black hair, glasses, smile"),
    ("1girl, blond hair", "solo, blonde hair"),
    ("1girl, glasses", "1girl, sunglasses"),
    ("", "2girls, red hair"),
    (None, "1boy"),
    ("multiple girls", "3girls"),
])
def test_agreeing_or_missing_tags_do_not_conflict(a, b) -> None:
    assert text_conflict(a, b).score == 0.0


def test_count_conflict_outweighs_accessory_conflict() -> None:
    assert text_conflict("1girl", "2girls").score > text_conflict("1girl, hat", "1girl").score


def test_text_conflict_drives_penalty_and_r(img) -> None:
    s, r = img("references/madoka_lineart.png"), img("references/madoka.jpg")
    calm = compare(s, r, sketch_tags="1girl, pink hair", reference_tags="1girl, pink hair")
    clash = compare(s, r, sketch_tags="1girl, pink hair", reference_tags="3girls, black hair")
    assert clash.text_conflict == 1.0 and calm.text_conflict == 0.0
    assert clash.conflict_penalty == 1.0
    assert clash.reference_final_score == 0.0 < calm.reference_final_score
    assert "count" in clash.reason


# --- embeddings --------------------------------------------------------------------------------

def test_cosine_mapping() -> None:
    v = np.array([1.0, 2.0, 3.0])
    assert cosine_similarity01(v, 5 * v) == pytest.approx(1.0)
    assert cosine_similarity01([1.0, 0.0], [0.0, 1.0]) == pytest.approx(0.0)
    assert cosine_similarity01([1.0, 0.0], [-1.0, 0.0]) == 0.0
    assert cosine_similarity01([1.0, 0.0], [1.0, 1.0]) == pytest.approx(np.sqrt(0.5))
    assert cosine_similarity01(np.ones((1, 4)), np.ones(4)) == pytest.approx(1.0)


@pytest.mark.parametrize(("a", "b", "msg"), [
    (np.ones(8), np.ones(6), "dimensions"),
    (np.zeros(4), np.ones(4), "all zeros"),
    (np.array([1.0, np.nan]), np.ones(2), "NaN"),
    (np.ones((2, 4)), np.ones(4), "shape"),
])
def test_bad_embeddings_are_named(a, b, msg) -> None:
    with pytest.raises(EmbeddingError, match=msg):
        cosine_similarity01(a, b)


def test_embeddings_replace_classical_similarity(img) -> None:
    s, r = img("sketches/user_1.png"), img("references/saber.png")
    rng = np.random.default_rng(0)
    e = rng.normal(size=32)
    same = compare(s, r, sketch_embedding=e, reference_embedding=e, similarity_source="open_clip")
    assert same.similarity_source == "open_clip"
    assert same.similarity == pytest.approx(1.0)
    assert same.measurements["classical_similarity"] < 0.9
    with pytest.raises(EmbeddingError, match="dimensions"):
        compare(s, r, sketch_embedding=e, reference_embedding=e[:16])
    with pytest.raises(ReferenceInputError, match="reference_embedding"):
        compare(s, r, sketch_embedding=e)
    with pytest.raises(ReferenceInputError, match="similarity_source"):
        compare(s, r, similarity_source="clip_vision")


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("sketch", "ref", "name"), [
    (np.zeros((64, 64, 5), np.uint8), np.zeros((64, 64, 3), np.uint8), "sketch"),
    (np.zeros((64, 64, 3), np.uint8), np.zeros((8, 64, 3), np.uint8), "reference"),
    (np.full((64, 64, 3), np.nan, np.float32), np.zeros((64, 64, 3), np.uint8), "sketch"),
    (np.zeros((64, 64, 3), np.uint8), np.full((64, 64, 3), 2.0, np.float32), "reference"),
    (np.zeros((2, 64, 64, 3), np.uint8), np.zeros((64, 64, 3), np.uint8), "sketch"),
])
def test_bad_images_are_named(sketch, ref, name) -> None:
    with pytest.raises(ImageInputError, match=f"^{name}:"):
        compare(sketch, ref)


def test_blank_images_give_finite_scores() -> None:
    blank = np.full((64, 64, 3), 255, np.uint8)
    r = compare(blank, blank)
    assert all(np.isfinite(v) for v in (r.similarity, r.style_distance, r.accessory_conflict, r.saturation))
    assert r.colored is False and r.style_distance == 0.0


# --- measured once, reused ------------------------------------------------------------------

def test_measures_in_place_of_pixels_give_the_identical_report(img) -> None:
    from agents.measure.reference_compare import measure_image

    sketch, ref = img("sketches/user_3.png"), img("references/madoka.jpg")
    direct = compare(sketch, ref, sketch_tags="1girl, sunglasses").to_dict()
    s_m, r_m = measure_image(sketch, "sketch", colour=False), measure_image(ref, "reference")
    assert compare(sketch, r_m, sketch_tags="1girl, sunglasses").to_dict() == direct
    assert compare(s_m, r_m, sketch_tags="1girl, sunglasses").to_dict() == direct
    assert compare(s_m, None).to_dict() == compare(sketch, None).to_dict()
    with pytest.raises(ValueError, match="read-only"):
        r_m.descriptor[0] = 1.0  # shared between pairs once cached: nobody may change it


def test_a_reference_measured_without_colour_is_refused_by_name(img) -> None:
    from agents.measure.reference_compare import measure_image

    flat = measure_image(img("references/saber.png"), "reference", colour=False)
    with pytest.raises(ReferenceInputError, match="reference: measured without colour"):
        compare(img("sketches/user_1.png"), flat)


def test_measure_image_names_the_bad_input() -> None:
    from agents.measure.reference_compare import measure_image

    with pytest.raises(ImageInputError, match="style.png"):
        measure_image(np.zeros((4, 4, 3), np.uint8), "style.png")
