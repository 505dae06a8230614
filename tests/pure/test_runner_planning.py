"""Tier 1: run_pair's planning step without a server: the reference measurements kept across pairs.

A batch pairs one style reference with many sketches; agents.measure.reference_cache keeps the reference's
measurements by the file's content hash, so only the first pair decodes and measures it.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from agents.measure import reference_cache
from agents.measure.imaging import ImageInputError, load_image
from agents.planning.chain import plan_pair
from agents.policy import default_policy
from agents.runtime.runner import run_pair


@pytest.fixture(autouse=True)
def _empty_cache():
    reference_cache.clear_reference_cache()
    yield
    reference_cache.clear_reference_cache()


def _png(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    img = np.full((96, 128, 3), 255, np.uint8)
    for _ in range(12):
        p, q = rng.integers(0, 96, 2), rng.integers(0, 96, 2)
        cv2.line(img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), (0, 0, 0), 2)
    cv2.imwrite(str(path), img)
    return path


def test_the_same_bytes_are_measured_once_whatever_the_path(fixture_data: Path, tmp_path: Path) -> None:
    ref = fixture_data / "references" / "saber.png"
    copy = tmp_path / "elsewhere.png"
    shutil.copyfile(ref, copy)
    first = reference_cache.reference_measures(ref)
    assert reference_cache.reference_measures(copy) is first  # keyed by content, not by name


def test_changed_bytes_are_measured_again(tmp_path: Path) -> None:
    path = _png(tmp_path / "ref.png", 1)
    before = reference_cache.reference_measures(path)
    _png(path, 2)  # same name, new drawing
    after = reference_cache.reference_measures(path)
    assert after is not before
    assert not np.array_equal(after.descriptor, before.descriptor)


def test_the_cache_keeps_only_the_most_recent_references(tmp_path: Path) -> None:
    size = reference_cache._CACHE_SIZE
    paths = [_png(tmp_path / f"r{i}.png", i) for i in range(size + 1)]
    first = reference_cache.reference_measures(paths[0])
    for p in paths[1:]:
        reference_cache.reference_measures(p)
    assert len(reference_cache._cache) == size
    assert reference_cache.reference_measures(paths[0]) is not first  # the oldest was dropped


def test_threads_sharing_the_cache_agree(tmp_path: Path) -> None:
    paths = [_png(tmp_path / f"r{i}.png", i) for i in range(4)] * 6
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(reference_cache.reference_measures, paths))
    for p, m in zip(paths, got, strict=True):
        assert np.array_equal(m.descriptor, reference_cache.reference_measures(p).descriptor)


def test_a_missing_or_unreadable_reference_is_named(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError, match="gone.png"):
        reference_cache.reference_measures(tmp_path / "gone.png")
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ImageInputError, match="notes.png"):
        reference_cache.reference_measures(bad)


def test_a_cached_reference_plans_exactly_like_a_fresh_one(fixture_data: Path) -> None:
    pol = default_policy()
    ref = fixture_data / "references" / "madoka.jpg"
    plans = []
    for sketch in ("user_1.png", "human_line.png", "user_1.png"):
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(reference_cache.reference_measures, ref)
            planned = plan_pair(load_image(fixture_data / "sketches" / sketch), future, name=sketch, policy=pol)
        plans.append(planned.reports())
    reference_cache.clear_reference_cache()
    fresh = plan_pair(load_image(fixture_data / "sketches" / "user_1.png"), load_image(ref), name="user_1.png",
                      policy=pol)
    assert plans[0] == plans[2] == fresh.reports()
    assert plans[1] != plans[0]


def _closed_port_client():
    from agents.runtime.comfyui_client import ComfyClient
    from cli.local_comfy import free_port

    return ComfyClient(f"http://127.0.0.1:{free_port()}", timeout=2)


def test_a_bad_reference_fails_planning_by_name_while_the_upload_fails_beside_it(fixture_data, tmp_path) -> None:
    from agents.runtime.run_log import RunLog

    bad = tmp_path / "style.png"
    bad.write_text("not an image")
    with RunLog(tmp_path / "runs.db") as log, _closed_port_client() as client:
        with pytest.raises(ImageInputError, match="style.png"):
            run_pair(client, sketch=fixture_data / "sketches" / "user_1.png", reference=bad,
                               out_dir=tmp_path / "out", log=log)
        [row] = log.runs()
    assert (row["status"], row["stage"]) == ("incomplete", "planning")
    assert "style.png" in row["error"]


def test_an_unreachable_server_fails_at_uploading_after_planning(fixture_data, tmp_path) -> None:
    from agents.runtime.comfyui_client import ServerUnavailable
    from agents.runtime.run_log import RunLog

    with RunLog(tmp_path / "runs.db") as log, _closed_port_client() as client:
        with pytest.raises(ServerUnavailable):
            run_pair(client, sketch=fixture_data / "sketches" / "user_1.png",
                               reference=fixture_data / "references" / "madoka.jpg", out_dir=tmp_path / "out", log=log)
        [row] = log.runs()
    assert (row["status"], row["stage"]) == ("incomplete", "uploading")
    assert row["plan"]  # the plan made beside the failed upload is kept in the log


def test_threads_asking_for_one_reference_share_one_measurement(fixture_data, monkeypatch) -> None:
    import threading
    import time

    calls: list[str] = []
    real = reference_cache.measure_image

    def slow(image, name, **kwargs):
        calls.append(name)
        time.sleep(0.2)  # long enough for every thread to ask while it runs
        return real(image, name, **kwargs)

    monkeypatch.setattr(reference_cache, "measure_image", slow)
    ref = fixture_data / "references" / "madoka.jpg"
    start = threading.Barrier(4)

    def ask(_: int):
        start.wait()
        return reference_cache.reference_measures(ref)

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(ask, range(4)))
    assert calls == ["madoka.jpg"]
    assert all(m is got[0] for m in got)


def test_a_failed_measurement_is_not_kept(tmp_path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    for _ in range(2):  # raised again, not served from the cache
        with pytest.raises(ImageInputError, match="notes.png"):
            reference_cache.reference_measures(bad)
    assert len(reference_cache._cache) == 0


def test_prefetch_measures_once_for_the_run_that_follows(fixture_data, monkeypatch) -> None:
    calls: list[str] = []
    real = reference_cache.measure_image

    def counting(image, name, **kwargs):
        calls.append(name)
        return real(image, name, **kwargs)

    monkeypatch.setattr(reference_cache, "measure_image", counting)
    ref = fixture_data / "references" / "saber.png"
    reference_cache.prefetch_reference(ref)
    tmp_missing = fixture_data / "references" / "no-such-file.png"
    reference_cache.prefetch_reference(tmp_missing)  # errors stay quiet
    measured = reference_cache.reference_measures(ref)
    assert calls == ["saber.png"] and measured is reference_cache.reference_measures(ref)
    with pytest.raises(ImageInputError, match="no-such-file.png"):
        reference_cache.reference_measures(tmp_missing)  # ... and come back, named, where the run asks
