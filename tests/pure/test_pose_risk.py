"""POSE_KEYPOINT parsing (controlnet_aux format) and anatomy risk from body keypoints."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from agents.measure.imaging import load_image
from agents.measure.pose_risk import PoseKeypointError, frame_for, pose_anatomy_risk
from agents.measure.visual_analyst import analyse, analyse_batch

# A plausible upright person in normalised coordinates, COCO-18 order.
UPRIGHT = [
    (0.50, 0.10), (0.50, 0.20), (0.40, 0.20), (0.36, 0.35), (0.34, 0.48), (0.60, 0.20), (0.64, 0.35),
    (0.66, 0.48), (0.44, 0.50), (0.43, 0.70), (0.43, 0.90), (0.56, 0.50), (0.57, 0.70), (0.57, 0.90),
    (0.48, 0.08), (0.52, 0.08), (0.46, 0.09), (0.54, 0.09),
]


def person(points, conf=0.9, scale=(1.0, 1.0)):
    flat = []
    for x, y in points:
        flat += [x * scale[0], y * scale[1], conf]
    return {"pose_keypoints_2d": flat, "face_keypoints_2d": None,
            "hand_left_keypoints_2d": None, "hand_right_keypoints_2d": None}


def frame(*people, w=512, h=768):
    return {"people": list(people), "canvas_width": w, "canvas_height": h}


def test_plausible_pose_is_low_risk():
    r = pose_anatomy_risk(frame(person(UPRIGHT)))
    assert r is not None and r.label == "low" and r.people == 1


def test_pixel_coordinates_give_the_same_risk_as_normalised():
    norm = pose_anatomy_risk(frame(person(UPRIGHT)))
    pix = pose_anatomy_risk(frame(person(UPRIGHT, scale=(512, 768))))
    assert pix.score == pytest.approx(norm.score, abs=1e-9)


def test_missing_limbs_and_asymmetry_raise_risk():
    base = pose_anatomy_risk(frame(person(UPRIGHT))).score
    missing = person(UPRIGHT)
    for i in (3, 4, 6, 7, 9, 10):  # both forearms/elbows and one leg not found: 0, 0, 0
        missing["pose_keypoints_2d"][3 * i:3 * i + 3] = [0.0, 0.0, 0.0]
    r_missing = pose_anatomy_risk(frame(missing))
    bent = [list(p) for p in UPRIGHT]
    bent[4] = [0.30, 0.75]  # right forearm far longer than the left
    r_asym = pose_anatomy_risk(frame(person(bent)))
    assert r_missing.score > base and r_missing.label in ("medium", "high")
    assert r_asym.score > base
    assert any("forearm" in reason for reason in r_asym.reasons)


def test_more_people_raise_risk():
    one = pose_anatomy_risk(frame(person(UPRIGHT))).score
    two = pose_anatomy_risk(frame(person(UPRIGHT), person(UPRIGHT)))
    assert two.score > one and two.people == 2


def test_no_people_means_no_pose_signal():
    assert pose_anatomy_risk(frame()) is None


def test_frame_selection_per_batch_item():
    f1, f2 = frame(person(UPRIGHT)), frame()
    assert frame_for([f1], 1, 3) is f1
    assert frame_for([f1, f2], 1, 2) is f2
    assert frame_for(f1, 0, 1) is f1
    assert frame_for(None, 0, 1) is None
    with pytest.raises(PoseKeypointError, match="2 frames for 3 images"):
        frame_for([f1, f2], 0, 3)


@pytest.mark.parametrize(
    ("bad", "pattern"),
    [
        ({"people": [{"pose_keypoints_2d": [0.1] * 10}]}, "18 x"),
        ({"people": [{"pose_keypoints_2d": [[0.1, 0.2, 1.0]] * 18}]}, "flat list"),
        ({"people": [{"pose_keypoints_2d": [float("nan")] * 54}]}, "NaN"),
        ({"people": [person(UPRIGHT)], "canvas_width": 0, "canvas_height": 10}, "canvas size"),
        ({"people": ["nobody"]}, "each person"),
    ],
)
def test_malformed_pose_raises_named_error(bad, pattern):
    with pytest.raises(PoseKeypointError, match=f"pose_keypoint.*{pattern}"):
        pose_anatomy_risk(bad)


def test_analysis_takes_anatomy_from_the_pose_when_given(fixture_data):
    img = load_image(fixture_data / "sketches" / "human_line.png")
    plain = analyse(img, "person")
    good = analyse(img, "person", pose_frame=frame(person(UPRIGHT), w=768, h=768))
    broken_pose = person(UPRIGHT)
    for i in range(2, 14):
        if i not in (8, 11):
            broken_pose["pose_keypoints_2d"][3 * i:3 * i + 3] = [0.0, 0.0, 0.0]
    bad = analyse(img, "person", pose_frame=frame(broken_pose, w=768, h=768))
    assert plain.anatomy_source == "structure"
    assert good.anatomy_source == bad.anatomy_source == "pose_keypoints"
    assert good.anatomy_risk == "low" and bad.anatomy_risk == "high"
    assert any("check anatomy" in n for n in bad.notes["fix"])
    # The pose changes only anatomy, never the line measurements.
    assert good.line_quality_score == plain.line_quality_score
    empty_pose = analyse(img, "person", pose_frame=frame())
    assert empty_pose.anatomy_source == "structure"


def test_batch_with_one_pose_frame_per_image(fixture_data):
    img = load_image(fixture_data / "sketches" / "human_line.png")
    frames = [frame(person(UPRIGHT)), copy.deepcopy(frame())]
    out = analyse_batch([img, np.asarray(img)], pose=frames)
    assert [o.anatomy_source for o in out] == ["pose_keypoints", "structure"]
