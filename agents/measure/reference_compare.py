"""Reference Compare (seed 004 sections 3B, 12, 16): how far a style reference can be trusted.

Signals, all 0..1:
- similarity: classical by default - Pearson correlation of two-level HOG descriptors of both
  images' line maps (agents.image_features), so a drawing and a colour illustration of the same
  layout match; from embeddings when both are given: max(0, cosine) (agents.embeddings).
- style_distance D = 0.5 * edge_term + 0.5 * contrast_term, with
  edge_term = |e_s - e_r| / max(e_s, e_r, 0.01) over Canny edge densities and
  contrast_term = |c_s - c_r| / max(c_s, c_r, 0.05) over luma standard deviations
  (both at 512 px). Relative differences, so each term is 0..1 and D(x, x) = 0.
- colored (CR): mean HSV saturation over the reference's content pixels is >= CR_THRESHOLD.
  Content = not background (within 0.1 per channel of the border's median colour, or near-white
  with saturation < 0.08) and not near-black (V < 0.15, where hue and saturation are noise).
- accessory_conflict (AC): agents.accessory_conflict.
- text_conflict: agents.tag_conflict (0 unless both tag lists are given).
- image_conflict = IMAGE_CONFLICT_WEIGHT * AC.
- conflict_penalty = max(text_conflict, image_conflict). Max fusion: either source alone is
  evidence of a contradiction, and averaging would let a silent detector halve a certain one.
  AC is weighted down because it is a heuristic (see its limits); the text rules are not.
- reference_final_score R = similarity * (1 - conflict_penalty) (seed section 12).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .accessory_conflict import HeadBlobs, accessory_conflict, head_blobs
from .analysis_types import ReferenceReport
from .embeddings import cosine_similarity01
from .image_features import (
    WORK_SIDE,
    descriptor_similarity,
    edge_density,
    gray_contrast,
    layout_descriptor,
    line_map,
    working_gray,
)
from .imaging import border_colour, fit_within, max_channel_distance, to_rgb_float_within
from .tag_conflict import check_tags, text_conflict

CR_THRESHOLD = 0.15
IMAGE_CONFLICT_WEIGHT = 0.75
EMBEDDING_SOURCES = ("clip_vision", "open_clip", "embedding")
_EDGE_FLOOR, _CONTRAST_FLOOR = 0.01, 0.05


class ReferenceInputError(ValueError):
    """Bad arguments to compare(); the message names the argument."""


def colored_statistic(rgb: np.ndarray) -> tuple[float, float]:
    """(mean saturation over content pixels, share of pixels counted as content)."""
    small, _ = fit_within(rgb, WORK_SIDE)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    s, v = hsv[:, :, 1], hsv[:, :, 2]
    background = (max_channel_distance(small, border_colour(small)) < 0.1) | ((v > 0.92) & (s < 0.08))
    content = ~background & (v >= 0.15)
    n = int(np.count_nonzero(content))
    if n == 0:
        return 0.0, 0.0
    return float(s[content].mean()), n / float(content.size)


def _style_terms(ea: float, eb: float, ca: float, cb: float) -> tuple[float, dict[str, float]]:
    """D and its parts (formula in the module docstring) from both images' edge densities and contrasts."""
    edge_term = abs(ea - eb) / max(ea, eb, _EDGE_FLOOR)
    contrast_term = abs(ca - cb) / max(ca, cb, _CONTRAST_FLOOR)
    d = float(np.clip(0.5 * edge_term + 0.5 * contrast_term, 0.0, 1.0))
    return d, {"edge_density_sketch": ea, "edge_density_reference": eb, "contrast_sketch": ca,
               "contrast_reference": cb, "edge_term": edge_term, "contrast_term": contrast_term}


@dataclass(frozen=True)
class ImageMeasures:
    """Everything compare() measures on one image by itself, at WORK_SIDE.

    compare() accepts these in place of pixels, so a batch that pairs one style reference with many
    sketches measures the reference once (measure_image) instead of per sketch.
    saturation / content_share: None when measured without colour (a sketch's are never used).
    """

    descriptor: np.ndarray
    edge_density: float
    contrast: float
    blobs: HeadBlobs
    saturation: float | None
    content_share: float | None


def measure_image(image: np.ndarray, name: str, *, colour: bool = True) -> ImageMeasures:
    """ImageMeasures of one image; errors name `name` (see agents.measure.imaging for what is accepted)."""
    return _measure_rgb(to_rgb_float_within(image, WORK_SIDE, name)[0], colour=colour)


def _measure_rgb(rgb: np.ndarray, *, colour: bool) -> ImageMeasures:
    gray = working_gray(rgb)
    descriptor = layout_descriptor(line_map(gray))
    descriptor.flags.writeable = False  # shared between pairs when cached
    sat, share = colored_statistic(rgb) if colour else (None, None)
    return ImageMeasures(descriptor, edge_density(gray), gray_contrast(gray), head_blobs(rgb), sat, share)


def _pick_source(similarity_source: str, sketch_embedding: Any, reference_embedding: Any) -> str:
    have = (sketch_embedding is not None, reference_embedding is not None)
    if have[0] != have[1]:
        missing = "reference_embedding" if have[0] else "sketch_embedding"
        raise ReferenceInputError(f"{missing}: missing; give both embeddings or neither")
    if similarity_source == "auto":
        return "embedding" if have[0] else "classical"
    if similarity_source == "classical":
        if have[0]:
            raise ReferenceInputError("similarity_source: 'classical' given together with embeddings")
        return "classical"
    if similarity_source in EMBEDDING_SOURCES:
        if not have[0]:
            raise ReferenceInputError(f"similarity_source: '{similarity_source}' needs both embeddings")
        return similarity_source
    raise ReferenceInputError(
        f"similarity_source: unknown value {similarity_source!r} (auto, classical, {', '.join(EMBEDDING_SOURCES)})"
    )


def compare(
    sketch: np.ndarray | ImageMeasures,
    reference: np.ndarray | ImageMeasures | None,
    *,
    sketch_tags: str | Iterable[str] | None = None,
    reference_tags: str | Iterable[str] | None = None,
    sketch_embedding: Any = None,
    reference_embedding: Any = None,
    similarity_source: str = "auto",
) -> ReferenceReport:
    """Compare a sketch with an optional style reference; no reference gives ReferenceReport.absent().

    Either image may be given as its ImageMeasures (measure_image) instead of pixels: same result.
    """
    check_tags(sketch_tags, "sketch_tags")
    check_tags(reference_tags, "reference_tags")
    s_rgb = None if isinstance(sketch, ImageMeasures) else to_rgb_float_within(sketch, WORK_SIDE, "sketch")[0]
    source = _pick_source(similarity_source, sketch_embedding, reference_embedding)
    if reference is None:
        return ReferenceReport.absent()
    s_m = sketch if isinstance(sketch, ImageMeasures) else _measure_rgb(s_rgb, colour=False)  # type: ignore[arg-type]
    r_m = reference if isinstance(reference, ImageMeasures) else measure_image(reference, "reference")
    if r_m.saturation is None or r_m.content_share is None:
        raise ReferenceInputError("reference: measured without colour; use measure_image(..., colour=True)")

    classical = descriptor_similarity(s_m.descriptor, r_m.descriptor)
    measurements: dict[str, float] = {"classical_similarity": classical}
    if source == "classical":
        similarity = classical
    else:
        similarity = cosine_similarity01(sketch_embedding, reference_embedding)
        measurements["embedding_similarity"] = similarity

    d, d_parts = _style_terms(s_m.edge_density, r_m.edge_density, s_m.contrast, r_m.contrast)
    measurements.update(d_parts)
    sat = r_m.saturation
    measurements["reference_content_share"] = r_m.content_share

    blobs_s, blobs_r = s_m.blobs, r_m.blobs
    ac = accessory_conflict(blobs_s, blobs_r)
    measurements.update({
        "head_blobs_sketch": float(blobs_s.count), "head_blob_area_sketch": blobs_s.area_share,
        "head_blobs_reference": float(blobs_r.count), "head_blob_area_reference": blobs_r.area_share,
    })

    tc = text_conflict(sketch_tags, reference_tags)
    image_conflict = IMAGE_CONFLICT_WEIGHT * ac
    penalty = max(tc.score, image_conflict)
    reasons = list(tc.reasons)
    if image_conflict > 0.3:
        reasons.append(f"dark accessory-like shapes in the head region differ (AC {ac:.2f})")
    reason = "compared" + (": " + "; ".join(reasons) if reasons else ": no conflict found")
    return ReferenceReport(
        present=True,
        reason=reason,
        similarity=float(similarity),
        similarity_source=source,
        text_conflict=float(tc.score),
        image_conflict=float(image_conflict),
        conflict_penalty=float(penalty),
        style_distance=d,
        colored=bool(sat >= CR_THRESHOLD),
        saturation=sat,
        accessory_conflict=ac,
        reference_final_score=float(similarity * (1.0 - penalty)),
        measurements=measurements,
    )
