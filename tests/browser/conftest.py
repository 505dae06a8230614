"""Fixtures the browser tier's modules share."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
sys.path.insert(0, str(REPO / "scripts"))
import build_workflows  # noqa: E402


@pytest.fixture(scope="session")
def template_images(comfy_server, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The input files the templates name, as a user who dropped their own images would have them."""
    folder = tmp_path_factory.mktemp("template-images")
    for name, source in ((build_workflows.SKETCH, FIXTURES / "sketches" / "user_3.png"),
                         (build_workflows.REFERENCE, FIXTURES / "references" / "madoka.jpg"),
                         (build_workflows.LINEART, FIXTURES / "references" / "madoka_lineart.png"),
                         (build_workflows.KEY_A, FIXTURES / "sketches" / "house_line.png"),
                         (build_workflows.KEY_B, FIXTURES / "sketches" / "house_line.png")):
        image = cv2.imread(str(source))
        assert image is not None, source
        cv2.imwrite(str(folder / name), image)
        assert comfy_server.upload_image(folder / name) == name
    # the audio example's LoadAudio previews its file: a generated click track under the name it gives
    sys.path.insert(0, str(FIXTURES.parents[0] / "pure"))
    from patterns_signals import click_track, write_wav

    write_wav(folder / build_workflows.AUDIO_FILE, click_track(np.array([0.5, 1.0]), 22050, 1.5), 22050)
    assert comfy_server.upload_image(folder / build_workflows.AUDIO_FILE) == build_workflows.AUDIO_FILE
