"""Subject tags: user text, and a tiny randomly initialised open_clip model loaded from disk."""

from __future__ import annotations

import json

import pytest

from agents.measure.imaging import load_image
from agents.measure.subject_tags import TAG_VOCABULARY, SubjectTagError, load_tagger, parse_text_tags
from agents.measure.visual_analyst import analyse

TINY_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def save_tiny_model(folder, json_layout: bool = False, seed: int = 0):
    """Write a random-weight open_clip model to `folder` (open_clip folder layout, or a bare json)."""
    import torch
    from open_clip.model import CLIP

    torch.manual_seed(seed)
    model = CLIP(**TINY_CFG)
    folder.mkdir(parents=True, exist_ok=True)
    if json_layout:
        (folder / "m4_tiny_clip.json").write_text(json.dumps(TINY_CFG))
        torch.save(model.state_dict(), folder / "m4_tiny_clip.bin")
        return folder / "m4_tiny_clip.json"
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CFG, "preprocess_cfg": {}}))
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder


def test_text_tags_are_split_stripped_and_deduplicated():
    assert parse_text_tags(" 1girl,  school  uniform,,1GIRL,\nbackpack ") == ["1girl", "school uniform", "backpack"]
    assert parse_text_tags("") == [] and parse_text_tags(None) == []
    with pytest.raises(SubjectTagError, match="subject_tags"):
        parse_text_tags(3)  # type: ignore[arg-type]


def test_without_model_tags_come_from_text_or_nothing(fixture_data):
    img = load_image(fixture_data / "sketches" / "user_1.png")
    assert analyse(img, "t", text_tags="turtle").subject_tags == ["turtle"]
    none = analyse(img, "t")
    assert none.subject_tags == [] and none.tags_source == "none"


@pytest.mark.parametrize("json_layout", [False, True])
def test_tiny_open_clip_model_tags_from_the_vocabulary(tmp_path, fixture_data, json_layout):
    path = save_tiny_model(tmp_path / "clip", json_layout=json_layout)
    tagger = load_tagger(path)
    img = load_image(fixture_data / "sketches" / "user_3.png")
    a = analyse(img, "balloon", text_tags="ignored when a model is set", tagger=tagger)
    assert a.tags_source == "open_clip"
    assert len(a.subject_tags) == 3 and set(a.subject_tags) <= set(TAG_VOCABULARY)
    scores = [a.measurements[f"tag_score:{t}"] for t in a.subject_tags]
    assert scores == sorted(scores, reverse=True) and all(0.0 < s <= 1.0 for s in scores)
    # The tags depend on the weights: the same model gives the same tags, and the loader caches.
    assert load_tagger(path) is tagger
    assert analyse(img, "again", tagger=tagger).subject_tags == a.subject_tags


def test_tags_follow_the_model_weights(tmp_path, fixture_data):
    img = load_image(fixture_data / "sketches" / "user_3.png")
    results = set()
    for seed in range(4):
        tagger = load_tagger(save_tiny_model(tmp_path / f"clip{seed}", seed=seed))
        results.add(tuple(tagger.tag(img[:, :, :3] / 255.0).tags))
    assert len(results) > 1  # scores come from the model, not from a fixed ranking


def test_bad_model_paths_raise_named_errors(tmp_path):
    with pytest.raises(SubjectTagError, match="does not exist"):
        load_tagger(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SubjectTagError, match="no open_clip_config.json"):
        load_tagger(tmp_path / "empty")
    folder = save_tiny_model(tmp_path / "noweights")
    (folder / "open_clip_pytorch_model.bin").unlink()
    with pytest.raises(SubjectTagError, match="no weights file"):
        load_tagger(folder)
    remote = tmp_path / "remote"
    remote.mkdir()
    cfg = {**TINY_CFG, "text_cfg": {**TINY_CFG["text_cfg"], "hf_model_name": "some/model"}}
    (remote / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg}))
    (remote / "open_clip_pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(SubjectTagError, match="remote towers"):
        load_tagger(remote)
    wrong = save_tiny_model(tmp_path / "wrong")
    (wrong / "open_clip_pytorch_model.bin").write_bytes(b"truncated")
    with pytest.raises(SubjectTagError, match="cannot load"):
        load_tagger(wrong)
