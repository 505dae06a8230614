"""web/m4_director.js against the data it shows: the node ids it attaches to and the report fields it names.

The extension is JavaScript; these tests read its constant tables as text (JSON-shaped arrays) and check
them against node_list.json and the records the nodes put in their panels.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from agents.measure.reference_compare import compare
from agents.measure.visual_analyst import analyse
from agents.planning.animation_director import plan as make_plan
from cli.inputs import read_image

REPO = Path(__file__).resolve().parents[2]
# The extension (m4_director.js) and the panels it imports (m4_panels.js), read as one text.
JS = "\n".join((REPO / "web" / name).read_text(encoding="utf-8") for name in ("m4_director.js", "m4_panels.js"))
FIXTURES = REPO / "tests" / "fixtures"


def _js_array(name: str, text: str = JS) -> list[str]:
    """A `const NAME = [ "a", "b", ... ];` or `NAME: [ ... ],` string array of the extension."""
    m = re.search(rf"(?:const\s+{name}\s*=|\b{name}\s*:)\s*\[(.*?)\]", text, re.S)
    assert m, f"web/m4_director.js has no array {name}"
    body = re.sub(r"//[^\n]*", "", m.group(1))
    return re.findall(r'"([^"]+)"', body)


def _first_fields(kind: str) -> list[str]:
    m = re.search(r"const FIRST_FIELDS = \{(.*?)\n\};", JS, re.S)
    assert m, "web/m4_panels.js has no FIRST_FIELDS table"
    return _js_array(kind, m.group(1))


def test_extension_attaches_to_exactly_this_packs_node_ids():
    listed = json.loads((REPO / "node_list.json").read_text(encoding="utf-8"))
    assert sorted(_js_array("M4_NODE_IDS")) == sorted(listed)
    # The attach test is by id, not by a name prefix another pack's node could share.
    assert "startsWith(\"M4\")" not in JS and "startsWith('M4')" not in JS
    assert "M4_NODE_IDS.includes(" in JS


def _records() -> tuple[dict, dict, dict]:
    sketch = read_image(FIXTURES / "sketches" / "house_line.png", "sketch")
    reference = read_image(FIXTURES / "references" / "madoka.jpg", "reference")
    analysis = analyse(sketch, "house_line.png")
    report = compare(sketch, reference)
    return analysis.to_dict(), report.to_dict(), make_plan(analysis, report).to_dict()


def test_every_first_field_occurs_in_the_record_the_node_sends():
    analysis, reference, plan = _records()
    for kind, record in (("analysis", analysis), ("reference", reference), ("plan", plan)):
        fields = _first_fields(kind)
        assert fields, kind
        missing = [k for k in fields if k not in record]
        assert missing == [], f"FIRST_FIELDS.{kind} names keys its record never has: {missing}"


def test_panel_heights_are_one_table_in_the_extension_and_the_generator():
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    import build_workflows

    m = re.search(r"const PANEL_HEIGHTS = \{(.*?)\};", JS, re.S)
    assert m, "web/m4_director.js has no PANEL_HEIGHTS table"
    js = {k: int(v) for k, v in re.findall(r"(\w+):\s*(\d+)", m.group(1))}
    assert js == build_workflows.PANEL_HEIGHTS
    assert set(js) <= set(json.loads((REPO / "node_list.json").read_text(encoding="utf-8")))


def test_generated_workflows_leave_no_two_nodes_overlapping():
    """Nodes as the generator sizes them, the reserved panel included, title bar (30 px) above pos."""
    title = 30
    for path in sorted((REPO / "workflows").glob("*.json")):
        nodes = json.loads(path.read_text(encoding="utf-8"))["nodes"]
        boxes = [(n["id"], n["pos"][0], n["pos"][1] - title, n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1])
                 for n in nodes]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                apart = a[3] <= b[1] or b[3] <= a[1] or a[4] <= b[2] or b[4] <= a[2]
                assert apart, f"{path.stem}: nodes {a[0]} and {b[0]} overlap"
