"""One style reference usually serves many sketches: its Reference Compare measurements are kept by the
file's content hash, so a further pair skips decoding and measuring it again (~45 ms here).

The one cache every caller uses (`./m4 plan`, `./m4 run`/`batch` through the runner, the benchmarks).
Entries are futures: a second thread asking for a reference being measured waits for that result.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from concurrent.futures import Future
from pathlib import Path

from .imaging import check_image, decode_image
from .reference_compare import ImageMeasures, measure_image

_CACHE_SIZE = 8
_cache: OrderedDict[str, Future[ImageMeasures]] = OrderedDict()
_lock = threading.Lock()  # batch runs pairs on several threads


def reference_measures(path: Path) -> ImageMeasures:
    """Reference Compare's measurements of the reference file at `path`, from the cache when its bytes
    were measured (or are being measured) before in this process. Errors name the file."""
    check_image(path)  # existence and declared size before the whole file is read
    data = path.read_bytes()
    key = hashlib.sha256(data).hexdigest()
    owner = False
    with _lock:
        pending = _cache.get(key)
        if pending is not None:
            _cache.move_to_end(key)
        else:
            pending = _cache[key] = Future()
            owner = True
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    if owner:
        try:
            pending.set_result(measure_image(decode_image(data, path.name), path.name))
        except BaseException as exc:
            pending.set_exception(exc)
            with _lock:  # a failure is not kept: the next call tries again
                if _cache.get(key) is pending:
                    del _cache[key]
    return pending.result()


def prefetch_reference(path: Path) -> threading.Thread:
    """Start measuring a reference on a background thread (the CLI does while it connects to the server);
    the next reference_measures call finds it done or waits for it. Errors surface there, named, not here.
    Returns the thread, so a caller that exits early can wait for it to leave the pixel code."""
    def measure() -> None:
        try:
            reference_measures(path)
        except Exception:  # noqa: S110  (the caller's own reference_measures call reports it)
            pass

    thread = threading.Thread(target=measure, name="m4-reference-prefetch", daemon=True)
    thread.start()
    return thread


def clear_reference_cache() -> None:
    """Forget every cached reference measurement."""
    with _lock:
        _cache.clear()

