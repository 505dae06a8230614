"""The open_clip route: a tiny random-weight model written to a tmp folder, loaded the way users load theirs.

Random weights make the similarity values meaningless, so these tests check the mechanics (local
loading, preprocessing, embedding shape, cosine mapping, refusal of incomplete folders), not whether
the model finds madoka_lineart closer to madoka.jpg.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from agents.measure.embeddings import EmbeddingError, load_open_clip
from agents.measure.imaging import load_image
from agents.measure.reference_compare import compare
from host.tiny_open_clip import save_tiny_open_clip

TINY = {
    "model_cfg": {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
        "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
    },
    "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
}


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    return save_tiny_open_clip(tmp_path_factory.mktemp("tiny_open_clip"), TINY)


def test_local_model_loads_with_its_preprocessing(tiny_model_dir) -> None:
    enc = load_open_clip(tiny_model_dir)
    assert enc.image_size == 32
    assert enc.mean == (0.5, 0.5, 0.5) and enc.std == (0.25, 0.25, 0.25)
    assert load_open_clip(tiny_model_dir / "open_clip_config.json") is enc  # cached, file path accepted


def test_weights_come_from_the_file_not_a_fresh_init(tiny_model_dir) -> None:
    from safetensors.torch import load_file

    enc = load_open_clip(tiny_model_dir)
    saved = load_file(str(tiny_model_dir / "open_clip_model.safetensors"))
    name = "visual.conv1.weight"
    assert np.array_equal(enc.model.state_dict()[name].numpy(), saved[name].numpy())


def test_embedding_route_through_compare(tiny_model_dir, fixture_data) -> None:
    enc = load_open_clip(tiny_model_dir)
    a = load_image(fixture_data / "references/madoka_lineart.png")
    b = load_image(fixture_data / "references/madoka.jpg")
    ea, eb = enc.embed(a, "sketch"), enc.embed(b, "reference")
    assert ea.shape == eb.shape == (16,)
    assert np.isfinite(ea).all()
    r = compare(a, b, sketch_embedding=ea, reference_embedding=eb, similarity_source="open_clip")
    cos = float(ea @ eb / np.linalg.norm(ea) / np.linalg.norm(eb))
    assert r.similarity == pytest.approx(max(0.0, cos))
    assert r.similarity_source == "open_clip"
    assert compare(a, a, sketch_embedding=ea, reference_embedding=enc.embed(a)).similarity == pytest.approx(1.0)


def test_preprocess_centre_crops_to_model_size(tiny_model_dir) -> None:
    enc = load_open_clip(tiny_model_dir)
    wide = np.zeros((40, 120, 3), np.uint8)
    wide[:, 40:80] = 255  # the centre third is white: after the centre crop every pixel is white
    x = enc.preprocess(wide)
    assert x.shape == (3, 32, 32)
    assert np.allclose(x, (1.0 - 0.5) / 0.25, atol=1e-3)


def test_folder_without_weights_is_refused(tmp_path) -> None:
    (tmp_path / "open_clip_config.json").write_text(json.dumps(TINY))
    with pytest.raises(EmbeddingError, match="no weights"):
        load_open_clip(tmp_path)


@pytest.mark.parametrize("bad", ["", "/nonexistent/model/folder"])
def test_bad_paths_are_named(bad) -> None:
    with pytest.raises(EmbeddingError, match="open_clip_model_path"):
        load_open_clip(bad)


def test_folder_without_config_is_refused(tmp_path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(EmbeddingError, match="open_clip_config.json"):
        load_open_clip(tmp_path)
