"""The pack as ComfyUI's loader sees it: entrypoint, node ids, schemas, docs, Manager's node list."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _nodes(pack):
    ext = asyncio.run(pack.comfy_entrypoint())
    return asyncio.run(ext.get_node_list())


def test_entrypoint_registers_unique_m4_ids(pack) -> None:
    ids = [n.define_schema().node_id for n in _nodes(pack)]
    assert ids, "no nodes registered"
    assert len(ids) == len(set(ids))
    assert all(i.startswith("M4") for i in ids)


def test_node_list_json_matches_registered_ids(pack) -> None:
    listed = json.loads((REPO / "node_list.json").read_text())
    assert set(listed) == {n.define_schema().node_id for n in _nodes(pack)}


def test_every_node_documented_with_tooltips(pack) -> None:
    for node in _nodes(pack):
        schema = node.define_schema()
        assert schema.description, f"{schema.node_id}: no description"
        assert schema.display_name, f"{schema.node_id}: no display name"
        for item in list(schema.inputs or []) + list(schema.outputs or []):
            assert getattr(item, "tooltip", None), f"{schema.node_id}: {item.id} has no tooltip"
        assert (REPO / "web" / "docs" / f"{schema.node_id}.md").is_file(), f"{schema.node_id}: no docs page"


def test_outputs_are_named_where_a_node_has_several(pack) -> None:
    """Without display_name the canvas labels every output with its type ("FLOAT", "FLOAT", ...)."""
    for node in _nodes(pack):
        schema = node.define_schema()
        outputs = list(schema.outputs or [])
        if len(outputs) > 1:
            unnamed = [o.io_type for o in outputs if not o.display_name]
            assert unnamed == [], f"{schema.node_id}: unnamed outputs {unnamed}"
