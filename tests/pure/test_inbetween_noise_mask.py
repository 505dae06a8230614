"""Keep values -> LATENT noise_mask (image batches, video latents, temporal compression), and the
imputer's memory staying one chunk whatever the length."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from agents.inbetween.imputer import iter_chunks, keep_mask, prepare
from agents.inbetween.keys import InbetweenInputError
from agents.inbetween.noise_mask import latent_frame_values, latent_noise_mask


def test_image_batch_mask_is_per_frame_and_keys_zero() -> None:
    keep = keep_mask([0, 4], 5, soft=True)
    m = latent_noise_mask(keep, (5, 4, 3, 2), 0.5)
    assert m.shape == (5, 1, 3, 2) and m.dtype == np.float32
    assert m[0].max() == 0.0 and m[4].max() == 0.0
    assert np.allclose(m[2], 0.5 * keep[2]) and m[1].min() > 0


def test_video_latent_and_temporal_compression() -> None:
    keep = np.array([0, 1, 1, 1, 0, 1, 1, 1, 1], np.float32)  # 9 frames, keys at 0 and 4
    assert latent_frame_values(keep, 9, 1).tolist() == keep.tolist()
    # 4 frames per latent frame: latent 0 = frame 0, latent 1 = frames 1-4 (holds key 4), latent 2 = 5-8
    assert latent_frame_values(keep, 3, 4).tolist() == [0.0, 0.0, 1.0]
    m = latent_noise_mask(keep, (1, 16, 3, 2, 2), 1.0, frames_per_latent=4)
    assert m.shape == (1, 1, 3, 2, 2) and m[0, 0, :, 0, 0].tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize(("values", "shape", "fpl", "pattern"), [
    (np.zeros(5), (3, 4, 2, 2), 1, r"^keep_mask: 5 frames for a latent of 3 frames"),
    (np.zeros(8), (1, 4, 3, 2, 2), 4, r"^keep_mask: 8 frames do not fit 3 latent frames"),
    (np.full(3, 2.0), (3, 4, 2, 2), 1, r"^keep_mask: values must lie in 0..1"),
    (np.zeros(3), (3, 4, 2), 1, r"^latent: expected \[B, C, H, W\] or \[B, C, T, H, W\]"),
])
def test_bad_counts_and_shapes_fail(values: np.ndarray, shape: tuple[int, ...], fpl: int, pattern: str) -> None:
    with pytest.raises(InbetweenInputError, match=pattern):
        latent_noise_mask(values, shape, 1.0, fpl)


def test_long_request_holds_one_chunk_not_the_sequence() -> None:
    key = np.ones((64, 64, 3), np.float32)
    key[10:50, 20:23] = 0.0
    other = np.roll(key, 6, axis=1)
    frame_bytes = key.nbytes

    def peak(length: int) -> int:
        req = prepare([key, other], [0, length - 1], length, "line_aware")
        tracemalloc.start()
        for _ in iter_chunks(req):
            pass
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    short, long = peak(20), peak(400)
    assert long < short + 8 * frame_bytes, (short, long)  # 20x the frames, about the same peak
    assert long < 40 * frame_bytes
