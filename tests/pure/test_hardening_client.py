"""Issue 11 items 3, 7 and the server cases of 5 and 10: what ComfyClient does with a hostile or broken
server (huge or fake downloads, partly invalid prompts, answers of the wrong shape, hidden file names)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.runtime.comfyui_client import ComfyClient, ComfyClientError, PromptRejected, UnsafeFilename
from host.hostile_peer import PNG_SIGNATURE, Answer, Script, hostile_server, json_answer


def _entry(name: str = "final_00001_.png", subfolder: str = "M4") -> dict:
    return {"outputs": {"9": {"images": [{"filename": name, "subfolder": subfolder, "type": "output"}]}}}


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_a_download_over_the_cap_is_stopped_and_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("M4_MAX_IMAGE_BYTES", str(1 << 20))
    script = Script({"/view": Answer(PNG_SIGNATURE + b"\0" * (1 << 16), "image/png", repeat=64)})  # 4 MiB
    with hostile_server(script) as url, ComfyClient(url) as client:
        with pytest.raises(ComfyClientError, match=r"node 9: final_00001_.png is over the download limit of 1048576"):
            client.download_outputs(_entry(), tmp_path / "dest")
    assert _files(tmp_path / "dest") == []  # no partial file, no temporary file


def test_view_itself_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("M4_MAX_IMAGE_BYTES", str(1 << 20))
    script = Script({"/view": Answer(b"\0" * (1 << 16), "image/png", repeat=64)})
    with hostile_server(script) as url, ComfyClient(url) as client:
        with pytest.raises(ComfyClientError, match="over the download limit"):
            client.view("a.png", "M4")


@pytest.mark.parametrize(("answer", "said"), [
    (Answer(b"<html><body>login</body></html>", "text/html"), "sent 'text/html', not an image"),
    (Answer(b"<html><body>login</body></html>", "image/png"), "bytes are not an image"),
    (Answer(b"", "image/png"), "bytes are not an image"),
])
def test_html_sent_as_an_image_is_an_error_not_a_png_file(tmp_path: Path, answer: Answer, said: str) -> None:
    with hostile_server(Script({"/view": answer})) as url, ComfyClient(url) as client:
        with pytest.raises(ComfyClientError, match=f"node 9: final_00001_.png: .*{said}"):
            client.download_outputs(_entry(), tmp_path / "dest")
    assert _files(tmp_path / "dest") == []


def test_a_body_cut_short_leaves_no_file(tmp_path: Path) -> None:
    script = Script({"/view": Answer(PNG_SIGNATURE + b"x" * 1000, "image/png", declared_extra=5000)})
    with hostile_server(script) as url, ComfyClient(url) as client:
        with pytest.raises(ComfyClientError, match="final_00001_.png"):
            client.download_outputs(_entry(), tmp_path / "dest")
    assert _files(tmp_path / "dest") == []


def test_an_existing_file_is_replaced_only_by_a_whole_good_download(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "final_00001_.png").write_bytes(b"earlier run")
    with hostile_server(Script({"/view": Answer(b"<html>", "text/html")})) as url, ComfyClient(url) as client:
        with pytest.raises(ComfyClientError):
            client.download_outputs(_entry(), dest)
    assert (dest / "final_00001_.png").read_bytes() == b"earlier run"


@pytest.mark.parametrize(("name", "subfolder"), [(".bashrc", ""), (".hidden.png", "M4"), ("ok.png", ".ssh"),
                                                 ("ok.png", "M4/.git")])
def test_hidden_names_are_refused_like_traversal(tmp_path: Path, name: str, subfolder: str) -> None:
    script = Script({"/view": Answer(PNG_SIGNATURE, "image/png")})
    with hostile_server(script) as url, ComfyClient(url) as client:
        with pytest.raises(UnsafeFilename, match="node 9"):
            client.download_outputs(_entry(name, subfolder), tmp_path / "dest")
    assert script.seen == [] and _files(tmp_path / "dest") == []


def test_node_errors_in_an_accepted_prompt_are_a_failure_naming_node_and_input() -> None:
    node_errors = {"12": {"class_type": "ControlNetLoader", "dependent_outputs": ["9"], "errors": [
        {"type": "value_not_in_list", "message": "Value not in list", "details": "control_net_name: 'x' not in []",
         "extra_info": {"input_name": "control_net_name"}}]}}
    script = Script({"POST /prompt": json_answer({"prompt_id": "p1", "number": 1, "node_errors": node_errors}),
                     "POST /interrupt": json_answer({}), "POST /queue": json_answer({})})
    prompt = {"12": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "x"}}}
    with hostile_server(script) as url, ComfyClient(url) as client:
        with pytest.raises(PromptRejected, match=r"node 12 \(ControlNetLoader\): Value not in list .*"
                                                 r"\[input control_net_name\]") as caught:
            client.submit(prompt)
    assert caught.value.node_errors == node_errors
    assert ("POST", "/queue") in script.seen  # the part the server started is taken off its queue


@pytest.mark.parametrize("answer", [{"number": 3, "node_errors": {}}, {"prompt_id": None}, ["p1"], "p1"])
def test_a_prompt_answer_without_prompt_id_is_named(answer: object) -> None:
    with hostile_server(Script({"POST /prompt": json_answer(answer)})) as url, ComfyClient(url) as client:
        with pytest.raises(ComfyClientError, match="POST /prompt answered"):
            client.submit({"1": {"class_type": "X", "inputs": {}}})


@pytest.mark.parametrize("info", [{"KSampler": "a string"}, {"KSampler": None}, {"KSampler": {"input": "x"}},
                                  {"KSampler": {"input": {"required": None, "optional": 7}}}, ["KSampler"], None])
def test_object_info_of_the_wrong_shape_is_named(info: object) -> None:
    with hostile_server(Script({"/object_info": json_answer(info)})) as url, ComfyClient(url) as client:
        with pytest.raises(ComfyClientError, match="GET /object_info"):
            client.object_info()


@pytest.mark.parametrize("entry", ["done", 5, ["x"], {"status": "error"}])
def test_a_history_entry_of_the_wrong_shape_is_named(entry: object) -> None:
    script = Script({"/history/": json_answer({"p1": entry})})
    with hostile_server(script) as url, ComfyClient(url) as client:
        with pytest.raises(ComfyClientError, match="GET /history/p1"):
            client.wait("p1", timeout=5)


def test_queue_of_the_wrong_shape_is_named() -> None:
    with hostile_server(Script({"/queue": json_answer({"queue_running": "lots"})})) as url, ComfyClient(url) as c:
        with pytest.raises(ComfyClientError, match="GET /queue"):
            c.queue_remaining()


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                       max_size=3), max_leaves=8)


@pytest.fixture(scope="module")
def shared_peer():
    script = Script()
    with hostile_server(script) as url:
        yield script, url


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(info=json_values, history=json_values, answer=json_values, queue=json_values)
def test_fuzz_any_server_answer_is_a_named_client_error_or_a_value(shared_peer, info: object, history: object,
                                                                   answer: object, queue: object) -> None:
    # Whatever JSON a server answers, the client gives a value or a ComfyClientError (never AttributeError,
    # KeyError or TypeError from deep inside).
    script, url = shared_peer
    script.routes = {"/object_info": json_answer(info), "/history/": json_answer({"p1": history}),
                     "POST /prompt": json_answer(answer), "/queue": json_answer(queue),
                     "POST /interrupt": json_answer({})}
    with ComfyClient(url) as client:
        for call in (client.object_info, client.queue_remaining, lambda: client.history("p1"),
                     lambda: client.submit({"1": {"class_type": "X", "inputs": {}}}),
                     lambda: client.wait("p1", timeout=0.3)):
            try:
                call()
            except ComfyClientError:
                pass
