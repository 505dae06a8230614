"""Generate the pack's drag-and-drop (UI format 0.4) workflows and their Browse Templates thumbnails.

Offline and deterministic: the UI graphs come from
  - workflows/api/Animation_Workflow_M4_Api.json (the locked template: node ids, classes, values),
  - agents/policy/m4_policy.toml [nodes.*] (which plan field drives which node input: one link each) and
    [template] (the agents', patches' and image nodes' ids), scripts/m4_template_layout.json (placement),
  - agents/planning/plan_types.py's M4PlanUnpack output table (plan field -> output name),
  - scripts/object_info_snapshot.json (input/output order and types of every node used).

    python scripts/build_workflows.py                     # (re)write the workflows/*.json UI files
    python scripts/build_workflows.py --out DIR           # write them elsewhere (the drift test does)
    python scripts/build_workflows.py --refresh-snapshot URL    # re-read node definitions from a
                                                          # running server (tests/host server: it has
                                                          # this pack and the third-party stand-ins)
    python scripts/build_workflows.py --thumbnails URL    # screenshot each workflow in that server's
                                                          # frontend into workflows/<name>.jpg (needs
                                                          # playwright + Debian's chromium)

ComfyUI 0.3.75 lists <pack>/workflows/*.json (one level) under Browse Templates, and frontend 1.32.9
fetches the thumbnail of a custom-node template as <name>.jpg beside <name>.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / "workflows"
SNAPSHOT = REPO / "scripts" / "object_info_snapshot.json"
API_TEMPLATE = WORKFLOWS / "api" / "Animation_Workflow_M4_Api.json"
# The adaptive preset's patch settings come from its API twin, so both presets run the same guidance.
ADAPTIVE_API_TEMPLATE = WORKFLOWS / "api" / "Animation_Workflow_M4_Adaptive_Api.json"

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
CHECKPOINT = "animagine-xl-3.1.safetensors"
SKETCH, REFERENCE, LINEART = "m4_sketch.png", "m4_reference.png", "m4_lineart.png"
KEY_A, KEY_B = "m4_key_a.png", "m4_key_b.png"  # the in-betweening example's two key drawings
# The one node the presets add outside the template contract (the agents' and the adaptive patches' ids
# come from the policy's [template], the same ids the API presets use).
LINE_QUALITY = 210
# The report panel each M4 node reserves under its widgets (web/m4_director.js PANEL_HEIGHTS, the same
# table: a test keeps them equal), so the layout below leaves room for it and a run grows no node.
PANEL_HEIGHTS = {
    "M4VisualAnalyst": 260, "M4ReferenceCompare": 240, "M4AnimationDirector": 420, "M4PromptEngineer": 200,
    "M4PlanUnpack": 420, "M4LineQualityAnalyzer": 180, "M4AdaptiveCFG": 140, "M4AdaptiveGuider": 140,
    "M4EarlyStopSampler": 140, "M4AdaptiveKSampler": 270, "M4RunLogger": 140, "M4RateRun": 140,
    "M4KeyframeImputer": 240, "M4InbetweenNoiseMask": 140, "M4AudioFeatures": 200, "M4CPPNFrames": 140,
    "M4CLIPGuidedCPPN": 140,
}
PANEL_MARGIN = 16  # the frontend's spacing around a DOM widget, with room to spare
NODE_GAP = 60  # between a node's bottom edge and the title bar of the node stacked below it
GROUP_COLORS = {"Inputs": "#3f789e", "M4 agents": "#8A8", "Stage 1 (structure)": "#a1309b",
                "Stage 2 (cleanup)": "#b58b2a", "Outputs": "#444", "Example": "#3f789e"}

# ---------------------------------------------------------------------------------------------
# Node definitions (the object_info snapshot)
# ---------------------------------------------------------------------------------------------

# Nodes the workflows use; --refresh-snapshot keeps exactly these.
SNAPSHOT_CLASSES = (
    "CheckpointLoaderSimple", "LoadImage", "ImageScale", "ImageInvert", "ControlNetLoader", "SetUnionControlNetType",
    "CLIPTextEncode", "ControlNetApplyAdvanced", "VAEEncode", "KSampler", "VAEDecode", "SaveImage", "PreviewImage",
    "EmptyLatentImage", "SamplerCustomAdvanced", "RandomNoise", "BasicScheduler",
    "IPAdapterUnifiedLoader", "IPAdapterAdvanced", "OpenposePreprocessor",
    "M4VisualAnalyst", "M4ReferenceCompare", "M4AnimationDirector", "M4PromptEngineer", "M4PlanUnpack",
    "M4LineQualityAnalyzer", "M4AdaptiveCFG", "M4AdaptiveGuider", "M4EarlyStopSampler", "M4AdaptiveKSampler",
    "ImageBatch", "SaveAnimatedWEBP", "M4KeyframeImputer", "M4InbetweenNoiseMask",
    "LoadAudio", "CreateVideo", "SaveVideo", "M4AudioFeatures", "M4CPPNFrames",
    "M4RunLogger", "M4RateRun",
)


def _input_entry(name: str, spec: list[Any], optional: bool) -> dict[str, Any]:
    kind, opts = spec[0], (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {})
    entry: dict[str, Any] = {"name": name, "optional": optional}
    if isinstance(kind, list):  # V1 combo: the option list itself (server-specific for files: not kept)
        entry.update(type="COMBO", default=kind[0] if kind else None)
    else:
        entry["type"] = kind
        if kind == "COMBO":
            options = opts.get("options") or []
            entry["default"] = opts.get("default", options[0] if options else None)
        elif "default" in opts:
            entry["default"] = opts["default"]
    if opts.get("control_after_generate"):
        entry["control_after_generate"] = True
    if opts.get("image_upload"):
        entry["image_upload"] = True
    if opts.get("audio_upload"):
        entry["audio_upload"] = True
    if entry["type"] == "STRING" and opts.get("multiline"):
        entry["multiline"] = True
    return entry


def snapshot_from_object_info(object_info: dict[str, Any]) -> dict[str, Any]:
    """The subset of /object_info generation needs: ordered inputs (kind, default, widget extras) and outputs."""
    missing = [c for c in SNAPSHOT_CLASSES if c not in object_info]
    if missing:
        raise SystemExit(f"the server does not define {missing}: start it with this pack and the stand-ins")
    out: dict[str, Any] = {}
    for cls in SNAPSHOT_CLASSES:
        info = object_info[cls]
        inputs = []
        for section in ("required", "optional"):
            specs = info["input"].get(section, {})
            for name in info.get("input_order", {}).get(section, list(specs)):
                inputs.append(_input_entry(name, specs[name], section == "optional"))
        out[cls] = {
            "display_name": info.get("display_name", cls),
            "inputs": inputs,
            "outputs": [{"name": n, "type": t} for n, t in zip(info["output_name"], info["output"], strict=True)],
        }
    return out


def load_snapshot(path: Path = SNAPSHOT) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def refresh_snapshot(url: str, path: Path = SNAPSHOT) -> None:
    import requests  # only this maintenance step talks to a (local) server

    info = requests.get(url.rstrip("/") + "/object_info", timeout=60).json()
    path.write_text(json.dumps(snapshot_from_object_info(info), indent=1, sort_keys=True) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# The single sources: policy driver map and Plan Unpack's output names
# ---------------------------------------------------------------------------------------------


def plan_unpack_outputs() -> dict[str, str]:
    """plan field -> M4PlanUnpack output name (agents/plan_types.py, the table the node is built from)."""
    _import_agents()
    from agents.planning.plan_types import PLAN_UNPACK_PROMPTS, PLAN_UNPACK_VALUES

    mapping = {plan_field: out_id for out_id, plan_field, _kind, _tip in PLAN_UNPACK_VALUES}
    mapping.update({out_id: out_id for out_id, _tip in PLAN_UNPACK_PROMPTS})  # prompts: same names
    return mapping


def _import_agents() -> None:
    # A development script run from anywhere: make the repository's agents package importable.
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def policy_drivers() -> dict[str, dict[str, str]]:
    """node id -> {input name: plan field}, from agents/m4_policy.toml via agents.policy."""
    _import_agents()
    from agents.policy import default_policy

    return {node_id: dict(d.drives) for node_id, d in default_policy().nodes.items()}


# ---------------------------------------------------------------------------------------------
# A small UI-graph builder
# ---------------------------------------------------------------------------------------------


@dataclass
class _Node:
    id: int
    type: str
    pos: tuple[int, int]
    group: str
    title: str | None
    values: dict[str, Any]
    width: int
    links_in: dict[str, int] = field(default_factory=dict)  # input name -> link id
    links_out: dict[int, list[int]] = field(default_factory=dict)  # output slot -> link ids


class UIGraph:
    def __init__(self, name: str, defs: dict[str, Any]) -> None:
        self.name = name
        self.defs = defs
        self.nodes: dict[int, _Node] = {}
        self.links: list[list[Any]] = []

    def add(self, node_id: int, class_type: str, pos: tuple[int, int], group: str, title: str | None = None,
            values: dict[str, Any] | None = None, width: int = 300) -> int:
        if node_id in self.nodes:
            raise ValueError(f"{self.name}: node id {node_id} used twice")
        if class_type not in self.defs:
            raise SystemExit(f"{class_type} is not in {SNAPSHOT.name}: add it to SNAPSHOT_CLASSES and refresh")
        self.nodes[node_id] = _Node(node_id, class_type, pos, group, title, dict(values or {}), width)
        return node_id

    def _inputs(self, node: _Node) -> list[dict[str, Any]]:
        """Inputs in the order the frontend serialises them: sockets first, then every widget."""
        spec = self.defs[node.type]["inputs"]
        sockets = [i for i in spec if i["type"] not in WIDGET_TYPES]
        widgets = [i for i in spec if i["type"] in WIDGET_TYPES]
        rows: list[dict[str, Any]] = []
        for inp in sockets + widgets:
            row: dict[str, Any] = {"name": inp["name"], "localized_name": inp["name"], "type": inp["type"]}
            if inp["type"] in WIDGET_TYPES:
                row["widget"] = {"name": inp["name"]}
            if inp["optional"]:
                row["shape"] = 7
            row["link"] = node.links_in.get(inp["name"])
            rows.append(row)
            if inp.get("image_upload"):
                rows.append({"name": "upload", "localized_name": "choose file to upload", "type": "IMAGEUPLOAD",
                             "widget": {"name": "upload"}, "link": None})
            if inp.get("audio_upload"):
                rows.append({"name": "upload", "localized_name": "choose file to upload", "type": "AUDIOUPLOAD",
                             "widget": {"name": "upload"}, "link": None})
        return rows

    def _output_slot(self, node: _Node, output: str | int) -> int:
        outs = self.defs[node.type]["outputs"]
        if isinstance(output, int):
            return output
        names = [o["name"] for o in outs]
        if output not in names:
            raise ValueError(f"{self.name}: {node.type} has no output {output!r} (has {names})")
        return names.index(output)

    def link(self, src: int, output: str | int, dst: int, input_name: str) -> int:
        s, d = self.nodes[src], self.nodes[dst]
        slot = self._output_slot(s, output)
        out_type = self.defs[s.type]["outputs"][slot]["type"]
        spec = {i["name"]: i for i in self.defs[d.type]["inputs"]}
        if input_name not in spec:
            raise ValueError(f"{self.name}: {d.type} has no input {input_name!r}")
        if spec[input_name]["type"] not in (out_type, "*") and out_type != "*":
            raise ValueError(f"{self.name}: {s.type}.{output} ({out_type}) cannot feed "
                             f"{d.type}.{input_name} ({spec[input_name]['type']})")
        if input_name in d.links_in:
            raise ValueError(f"{self.name}: {d.type} {dst}.{input_name} is linked twice")
        link_id = len(self.links) + 1
        d.links_in[input_name] = link_id
        s.links_out.setdefault(slot, []).append(link_id)
        # target_slot is filled in serialise(), once the input order is known
        self.links.append([link_id, src, slot, dst, input_name, out_type])
        return link_id

    def _widgets_values(self, node: _Node) -> list[Any]:
        values: list[Any] = []
        for inp in self.defs[node.type]["inputs"]:
            if inp["type"] not in WIDGET_TYPES:
                continue
            values.append(node.values.get(inp["name"], inp.get("default")))
            if inp.get("control_after_generate"):
                values.append("fixed")
            if inp.get("image_upload"):
                values.append("image")
            if inp.get("audio_upload"):  # the frontend's audio player and upload button hold no value
                values.extend([None, None])
        unknown = set(node.values) - {i["name"] for i in self.defs[node.type]["inputs"]}
        if unknown:
            raise ValueError(f"{self.name}: {node.type} {node.id} has no widget {sorted(unknown)}")
        return values

    def _size(self, node: _Node, inputs: list[dict[str, Any]]) -> list[int]:
        sockets = sum(1 for i in inputs if "widget" not in i or i["link"] is not None)
        shown = [i for i in self.defs[node.type]["inputs"]
                 if i["type"] in WIDGET_TYPES and i["name"] not in node.links_in]
        tall = sum(1 for i in shown if i.get("multiline"))
        height = 30 + 22 * max(sockets, len(self.defs[node.type]["outputs"]), 1) + 24 * len(shown) + 60 * tall
        if node.type == "LoadImage":
            height = 340
        if node.type in PANEL_HEIGHTS:
            height += PANEL_HEIGHTS[node.type] + PANEL_MARGIN
        return [node.width, height]

    def stack_below(self, upper: int, lower: int) -> None:
        """Move `lower` under `upper` (same x), clear of its size with the panel it reserves."""
        top = self.nodes[upper]
        height = self._size(top, self._inputs(top))[1]
        node = self.nodes[lower]
        node.pos = (top.pos[0], top.pos[1] + height + NODE_GAP)

    def _order(self) -> dict[int, int]:
        """Topological order (the frontend's execution order field), ties broken by id."""
        deps = {n: {link[1] for link in self.links if link[3] == n} for n in self.nodes}
        order: dict[int, int] = {}
        while len(order) < len(self.nodes):
            ready = sorted(n for n in self.nodes if n not in order and deps[n] <= set(order))
            if not ready:
                raise ValueError(f"{self.name}: the graph has a cycle")
            for n in ready:
                order[n] = len(order)
        return order

    def _groups(self, sizes: dict[int, list[int]]) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = []
        def corner(title: str) -> tuple[int, int]:
            return min((n.pos[0], n.pos[1]) for n in self.nodes.values() if n.group == title)

        # listed left to right, then top to bottom: the order a person reads them
        for title in sorted(dict.fromkeys(n.group for n in self.nodes.values()), key=corner):
            members = [n for n in self.nodes.values() if n.group == title]
            x0 = min(n.pos[0] for n in members) - 20
            y0 = min(n.pos[1] for n in members) - 30 - 50  # node title bar + the group's own title
            x1 = max(n.pos[0] + sizes[n.id][0] for n in members) + 20
            y1 = max(n.pos[1] + sizes[n.id][1] for n in members) + 20
            groups.append({"id": len(groups) + 1, "title": title, "bounding": [x0, y0, x1 - x0, y1 - y0],
                           "color": GROUP_COLORS.get(title, "#3f789e"), "font_size": 24, "flags": {}})
        return groups

    def serialise(self) -> dict[str, Any]:
        order = self._order()
        nodes, sizes, slot_of = [], {}, {}
        for node in sorted(self.nodes.values(), key=lambda n: n.id):
            inputs = self._inputs(node)
            slot_of[node.id] = {row["name"]: i for i, row in enumerate(inputs)}
            sizes[node.id] = self._size(node, inputs)
            outputs = []
            for slot, out in enumerate(self.defs[node.type]["outputs"]):
                outputs.append({"name": out["name"], "localized_name": out["name"], "type": out["type"],
                                "links": node.links_out.get(slot) or None, "slot_index": slot})
            entry: dict[str, Any] = {"id": node.id, "type": node.type}
            if node.title:
                entry["title"] = node.title
            entry.update(pos=list(node.pos), size=sizes[node.id], flags={}, order=order[node.id], mode=0,
                         inputs=inputs, outputs=outputs, properties={"Node name for S&R": node.type},
                         widgets_values=self._widgets_values(node))
            nodes.append(entry)
        links = [[lid, src, slot, dst, slot_of[dst][name], typ] for lid, src, slot, dst, name, typ in self.links]
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"m4-director/workflows/{self.name}")),
            "revision": 0,
            "last_node_id": max(self.nodes),
            "last_link_id": len(self.links),
            "nodes": nodes,
            "links": links,
            "groups": self._groups(sizes),
            "config": {},
            "extra": {"ds": {"scale": 0.5, "offset": [0, 0]}, "m4_generated_by": "scripts/build_workflows.py"},
            "version": 0.4,
        }


# ---------------------------------------------------------------------------------------------
# The M4 presets
# ---------------------------------------------------------------------------------------------

# Where each locked-template node sits: (column x, row y, group). Reads left to right:
# inputs -> agents -> stage 1 (top row) / stage 2 (bottom row) -> outputs.
_X = {"in1": 0, "in2": 380, "ag1": 800, "ag2": 1180, "ag3": 1520, "ag4": 1860,
      "s1": 2260, "s2": 2720, "s3": 3100, "out": 3500, "out2": 3880}
_S2 = 1200  # top of the stage-2 row: below stage 1 with its adaptive patch and that patch's panel
# Where each locked-template node sits, as data (node id -> [column, y, group]; "_stack": [above, below]
# pairs placed once their sizes are known): the generator itself names no template node id (they live in
# the policy and this file).
TEMPLATE_LAYOUT = REPO / "scripts" / "m4_template_layout.json"


def _template_layout() -> dict[str, tuple[str, int, str]]:
    raw = json.loads(TEMPLATE_LAYOUT.read_text(encoding="utf-8"))
    return {k: (v[0], int(v[1]), v[2]) for k, v in raw.items() if not k.startswith("_")}


def _layout_stacks() -> list[tuple[int, int]]:
    raw = json.loads(TEMPLATE_LAYOUT.read_text(encoding="utf-8"))
    return [(int(a), int(b)) for a, b in raw.get("_stack", [])]


def _api_values(node: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node["inputs"].items() if not isinstance(v, list)}


def _contract() -> Any:
    _import_agents()
    from agents.policy import default_policy

    return default_policy().template_contract


def _wire_masks(g: UIGraph, sketch: int, reference: int, analyst: int, compare: int) -> None:
    """LoadImage's MASK (1 - the file's alpha) into the agents, so a transparent file is composited on
    white in the graph as `./m4 plan` does (LoadImage's IMAGE keeps the hidden colour, often black)."""
    g.link(sketch, "MASK", analyst, "mask")
    g.link(sketch, "MASK", compare, "sketch_mask")
    g.link(reference, "MASK", compare, "reference_mask")


def build_m4(defs: dict[str, Any], api: dict[str, Any], drivers: dict[str, dict[str, str]],
             unpack_outputs: dict[str, str], adaptive: bool = False) -> dict[str, Any]:
    return m4_graph(defs, api, drivers, unpack_outputs, adaptive).serialise()


def m4_graph(defs: dict[str, Any], api: dict[str, Any], drivers: dict[str, dict[str, str]],
             unpack_outputs: dict[str, str], adaptive: bool = False) -> UIGraph:
    """The M4 preset as a graph (build_m4 serialises it; the logged-run example adds to it)."""
    name = "Animation_Workflow_M4_Adaptive" if adaptive else "Animation_Workflow_M4"
    g = UIGraph(name, defs)
    layout, contract = _template_layout(), _contract()
    unplaced = sorted(set(api) - set(layout))
    if unplaced:
        raise SystemExit(f"template nodes {unplaced} have no place in the layout: add them to {TEMPLATE_LAYOUT.name}")
    for node_id, node in api.items():
        col, y, group = layout[node_id]
        width = 400 if node["class_type"] == "CLIPTextEncode" else 320
        g.add(int(node_id), node["class_type"], (_X[col], y), group, node.get("_meta", {}).get("title"),
              _api_values(node), width)

    # The agents read the same sketch and reference the template loads.
    ANALYST, COMPARE, DIRECTOR, PROMPTS, UNPACK = (int(contract.planning[r]) for r in
                                                  ("analyst", "compare", "director", "prompts", "unpack"))
    sketch, reference = int(contract.images["sketch"]), int(contract.images["reference"])
    g.add(ANALYST, "M4VisualAnalyst", (_X["ag1"], 200), "M4 agents", width=320)
    g.add(COMPARE, "M4ReferenceCompare", (_X["ag1"], 700), "M4 agents", width=320)
    g.add(DIRECTOR, "M4AnimationDirector", (_X["ag2"], 200), "M4 agents", width=300)
    g.add(PROMPTS, "M4PromptEngineer", (_X["ag3"], 200), "M4 agents", width=300)
    g.add(UNPACK, "M4PlanUnpack", (_X["ag4"], 200), "M4 agents", width=280)
    g.add(LINE_QUALITY, "M4LineQualityAnalyzer", (_X["out2"], _S2 + 340), "Outputs", title="Line quality check")
    g.link(sketch, 0, ANALYST, "image")
    # No OpenPose -> Analyst link: the real OpenPose downloads its weights on first use (offline it fails), and
    # the planning branch must run without it (as ./m4 plan and ./m4 run plan). Linking the pose
    # preprocessor's POSE_KEYPOINT into the Analyst's optional pose_keypoint makes anatomy risk come from
    # body keypoints.
    g.link(sketch, 0, COMPARE, "sketch")
    g.link(reference, 0, COMPARE, "reference")
    _wire_masks(g, sketch, reference, ANALYST, COMPARE)
    g.link(ANALYST, "analysis", DIRECTOR, "analysis")
    g.link(COMPARE, "report", DIRECTOR, "reference_report")
    g.link(DIRECTOR, "plan", PROMPTS, "plan")
    g.link(ANALYST, "analysis", PROMPTS, "analysis")
    g.link(PROMPTS, "plan", UNPACK, "plan")

    model_feeds: dict[str, int] = {}
    if adaptive:  # the adaptive-CFG patch between each sampler and whatever feeds its model (its IP-Adapter)
        twin = json.loads(ADAPTIVE_API_TEMPLATE.read_text(encoding="utf-8"))
        places = [((_X["s2"], 480), "Stage 1 (structure)", "Adaptive CFG (KS1)"),
                  ((_X["s2"], _S2 + 280), "Stage 2 (cleanup)", "Adaptive CFG (KS2)")]
        samplers = sorted(contract.adaptive.items(), key=lambda kv: int(kv[0]))
        for (sampler, patch), (pos, group, title) in zip(samplers, places, strict=True):
            g.add(int(patch), "M4AdaptiveCFG", pos, group, title, values=_api_values(twin[patch]))
            model_feeds[sampler] = int(patch)

    # The template's own links, except the values the plan drives.
    driven = {(node_id, inp) for node_id, inputs in drivers.items() for inp in inputs}
    for node_id, node in api.items():
        for inp, value in node["inputs"].items():
            if not isinstance(value, list) or (node_id, inp) in driven:
                continue
            src, slot = value
            if inp == "model" and node_id in model_feeds:
                patch = model_feeds[node_id]
                if twin[node_id]["inputs"]["model"] != [str(patch), 0]:
                    raise SystemExit(f"the adaptive API preset's node {node_id} is not fed by patch {patch}")
                g.link(int(src), slot, patch, "model")
                g.link(patch, 0, int(node_id), "model")
                continue
            g.link(int(src), slot, int(node_id), inp)

    for node_id, inputs in sorted(drivers.items(), key=lambda kv: int(kv[0])):
        if node_id not in api:
            raise SystemExit(f"the policy drives node {node_id}, which the API template does not have")
        for inp, plan_field in inputs.items():
            if plan_field not in unpack_outputs:
                raise SystemExit(f"M4PlanUnpack has no output for plan field {plan_field!r}")
            g.link(UNPACK, unpack_outputs[plan_field], int(node_id), inp)

    g.link(int(contract.feeds["final_image"]), 0, LINE_QUALITY, "image")
    g.link(PROMPTS, "plan", LINE_QUALITY, "plan")
    g.stack_below(ANALYST, COMPARE)  # once every link is in: a node's size depends on its linked widgets
    for above, below in _layout_stacks():
        if below in g.nodes:  # a patch node exists in the adaptive preset only
            g.stack_below(above, below)
    return g


# ---------------------------------------------------------------------------------------------
# Examples, one per node family
# ---------------------------------------------------------------------------------------------


def _example_planning(defs: dict[str, Any]) -> UIGraph:
    g = UIGraph("M4_Example_Planning", defs)
    g.add(1, "LoadImage", (0, 0), "Inputs", "Sketch", {"image": SKETCH})
    g.add(2, "LoadImage", (0, 400), "Inputs", "Style reference", {"image": REFERENCE})
    g.add(3, "M4VisualAnalyst", (400, 0), "M4 agents", width=320)
    g.add(4, "M4ReferenceCompare", (400, 500), "M4 agents", width=320)
    g.add(5, "M4AnimationDirector", (780, 0), "M4 agents")
    g.add(6, "M4PromptEngineer", (1140, 0), "M4 agents")
    g.add(7, "M4PlanUnpack", (1500, 0), "M4 agents", width=280)
    g.link(1, 0, 3, "image")
    g.link(1, 0, 4, "sketch")
    g.link(2, 0, 4, "reference")
    _wire_masks(g, 1, 2, 3, 4)
    g.link(3, "analysis", 5, "analysis")
    g.link(4, "report", 5, "reference_report")
    g.link(5, "plan", 6, "plan")
    g.link(3, "analysis", 6, "analysis")
    g.link(6, "plan", 7, "plan")
    g.stack_below(3, 4)
    return g


def _example_line_quality(defs: dict[str, Any]) -> UIGraph:
    g = UIGraph("M4_Example_Line_Quality", defs)
    g.add(1, "LoadImage", (0, 0), "Example", "Line art to check", {"image": LINEART})
    g.add(2, "M4LineQualityAnalyzer", (400, 0), "Example", width=320)
    g.link(1, 0, 2, "image")
    return g


def _txt2img_base(g: UIGraph, prompt: str) -> None:
    g.add(1, "CheckpointLoaderSimple", (0, 0), "Example", values={"ckpt_name": CHECKPOINT})
    g.add(2, "CLIPTextEncode", (380, 0), "Example", "Positive", {"text": prompt}, width=400)
    g.add(3, "CLIPTextEncode", (380, 260), "Example", "Negative", {"text": "lowres, worst quality, low quality"},
          width=400)
    g.add(4, "EmptyLatentImage", (380, 520), "Example", values={"width": 1024, "height": 1024})
    g.link(1, 1, 2, "clip")
    g.link(1, 1, 3, "clip")


def _decode_and_save(g: UIGraph, latent_src: int, x: int, prefix: str) -> None:
    g.add(20, "VAEDecode", (x, 0), "Example")
    g.add(21, "SaveImage", (x + 300, 0), "Example", values={"filename_prefix": prefix})
    g.link(latent_src, 0, 20, "samples")
    g.link(1, 2, 20, "vae")
    g.link(20, 0, 21, "images")


_PROMPT = "1girl, solo, lineart, monochrome, masterpiece, best quality"


def _example_adaptive_cfg(defs: dict[str, Any]) -> UIGraph:
    g = UIGraph("M4_Example_Adaptive_CFG", defs)
    _txt2img_base(g, _PROMPT)
    g.add(10, "M4AdaptiveCFG", (860, 0), "Example", width=320)
    g.add(11, "KSampler", (1220, 0), "Example",
          values={"seed": 1234, "steps": 28, "cfg": 7.0, "sampler_name": "euler_ancestral"})
    g.link(1, 0, 10, "model")
    g.link(10, 0, 11, "model")
    g.link(2, 0, 11, "positive")
    g.link(3, 0, 11, "negative")
    g.link(4, 0, 11, "latent_image")
    _decode_and_save(g, 11, 1580, "M4/adaptive_cfg")
    return g


def _example_adaptive_guider(defs: dict[str, Any]) -> UIGraph:
    g = UIGraph("M4_Example_Adaptive_Guider_Early_Stop", defs)
    _txt2img_base(g, _PROMPT)
    g.add(10, "M4AdaptiveGuider", (860, 0), "Example", width=320)
    g.add(11, "M4EarlyStopSampler", (860, 400), "Example", width=320)
    g.add(12, "RandomNoise", (860, 760), "Example", values={"noise_seed": 1234})
    g.add(13, "BasicScheduler", (860, 900), "Example", values={"scheduler": "karras", "steps": 28})
    g.add(14, "SamplerCustomAdvanced", (1220, 0), "Example")
    g.link(1, 0, 10, "model")
    g.link(2, 0, 10, "positive")
    g.link(3, 0, 10, "negative")
    g.link(1, 0, 13, "model")
    g.link(12, 0, 14, "noise")
    g.link(10, 0, 14, "guider")
    g.link(11, 0, 14, "sampler")
    g.link(13, 0, 14, "sigmas")
    g.link(4, 0, 14, "latent_image")
    for upper, lower in ((10, 11), (11, 12), (12, 13)):
        g.stack_below(upper, lower)
    _decode_and_save(g, 14, 1580, "M4/adaptive_guider")
    return g


def _example_adaptive_ksampler(defs: dict[str, Any]) -> UIGraph:
    g = UIGraph("M4_Example_Adaptive_KSampler", defs)
    _txt2img_base(g, _PROMPT)
    g.add(10, "M4AdaptiveKSampler", (860, 0), "Example", width=320,
          values={"seed": 1234, "steps": 28, "cfg": 7.0, "sampler_name": "euler_ancestral"})
    g.add(11, "PreviewImage", (1580, 400), "Example", "CFG schedule plot")
    g.link(1, 0, 10, "model")
    g.link(2, 0, 10, "positive")
    g.link(3, 0, 10, "negative")
    g.link(4, 0, 10, "latent_image")
    g.link(10, "plot", 11, "images")
    _decode_and_save(g, 10, 1580, "M4/adaptive_ksampler")
    return g


# Refine pass of the in-betweening example: inside every case's denoise2 range of the policy and under
# its hard bound denoise2_max = 0.60 (the locked SDXL stage may clean the in-betweens, not redraw them).
INBETWEEN_DENOISE = 0.35


def _example_inbetween(defs: dict[str, Any]) -> UIGraph:
    """keys -> imputer -> VAEEncode -> per-frame noise mask -> KSampler refine -> VAEDecode -> keys
    re-imposed pixel-exact (imputer, external mode) -> animated WEBP."""
    g = UIGraph("M4_Example_Inbetween", defs)
    g.add(1, "CheckpointLoaderSimple", (0, 0), "Inputs", values={"ckpt_name": CHECKPOINT})
    g.add(2, "CLIPTextEncode", (0, 200), "Inputs", "Positive", {"text": _PROMPT}, width=360)
    g.add(3, "CLIPTextEncode", (0, 440), "Inputs", "Negative",
          {"text": "lowres, worst quality, blurry, grey, doubled lines"}, width=360)
    g.add(10, "LoadImage", (400, 0), "Inputs", "Key at frame 0", {"image": KEY_A})
    g.add(11, "LoadImage", (400, 420), "Inputs", "Key at frame 8", {"image": KEY_B})
    g.add(12, "ImageBatch", (760, 0), "M4 agents", "Keys")
    g.add(13, "M4KeyframeImputer", (760, 160), "M4 agents", width=340,
          values={"key_indices": "0,8", "length": 9, "mode": "line_aware"})
    g.add(14, "VAEEncode", (1180, 0), "Stage 2 (cleanup)")
    g.add(15, "M4InbetweenNoiseMask", (1180, 140), "Stage 2 (cleanup)", width=320, values={"shared_noise": True})
    g.add(16, "KSampler", (1540, 0), "Stage 2 (cleanup)",
          values={"seed": 1234, "steps": 20, "cfg": 5.0, "denoise": INBETWEEN_DENOISE})
    g.add(17, "VAEDecode", (1900, 0), "Outputs")
    g.add(18, "M4KeyframeImputer", (1900, 140), "Outputs", "Re-impose exact keys", width=340,
          values={"key_indices": "0,8", "length": 9, "mode": "external", "line_quality": False})
    g.add(19, "SaveAnimatedWEBP", (2280, 0), "Outputs", values={"filename_prefix": "M4/inbetween", "fps": 8.0})
    g.link(10, 0, 12, "image1")
    g.link(11, 0, 12, "image2")
    g.link(12, 0, 13, "keyframes")
    g.link(1, 1, 2, "clip")
    g.link(1, 1, 3, "clip")
    g.link(13, "images", 14, "pixels")
    g.link(1, 2, 14, "vae")
    g.link(14, 0, 15, "latent")
    g.link(13, "keep_mask", 15, "keep_mask")
    g.link(1, 0, 16, "model")
    g.link(2, 0, 16, "positive")
    g.link(3, 0, 16, "negative")
    g.link(15, 0, 16, "latent_image")
    g.link(16, 0, 17, "samples")
    g.link(1, 2, 17, "vae")
    g.link(12, 0, 18, "keyframes")
    g.link(17, 0, 18, "frames")
    g.link(18, "images", 19, "images")
    for upper, lower in ((12, 13), (14, 15), (17, 18)):  # same column: clear of the upper node's panel
        g.stack_below(upper, lower)
    return g


AUDIO_FILE = "m4_example_audio.wav"


def _example_audio_patterns(defs: dict[str, Any]) -> UIGraph:
    """LoadAudio -> features -> CPPN frames -> a video with the sound (core's CreateVideo + SaveVideo)."""
    g = UIGraph("M4_Example_Audio_Patterns", defs)
    g.add(1, "LoadAudio", (0, 0), "Example", "Music", {"audio": AUDIO_FILE})
    g.add(2, "M4AudioFeatures", (340, 0), "Example", values={"fps": 30.0})
    g.add(3, "M4CPPNFrames", (700, 0), "Example", values={"preset": "pulse", "width": 512, "height": 512})
    g.add(4, "CreateVideo", (1080, 0), "Example")
    g.add(5, "SaveVideo", (1420, 0), "Example", values={"filename_prefix": "video/m4_audio_patterns"})
    g.add(6, "PreviewImage", (700, 420), "Example", "Feature plot", width=360)
    g.link(1, 0, 2, "audio")
    g.link(2, "features", 3, "features")
    g.link(3, "images", 4, "images")
    g.link(3, "fps", 4, "fps")
    g.link(1, 0, 4, "audio")
    g.link(4, 0, 5, "video")
    g.link(2, "plot", 6, "images")
    g.stack_below(3, 6)  # under the frames node, clear of its reserved panel
    return g


LOGGED_RUN = "M4_Example_Logged_Run"
RUN_LOGGER, RATE_RUN = 220, 221  # outside the template contract, like LINE_QUALITY
MUTED = 2  # a node's mode the frontend leaves out of the prompt (Ctrl+M toggles it)


def build_logged_run(defs: dict[str, Any], api: dict[str, Any], drivers: dict[str, dict[str, str]],
                     unpack_outputs: dict[str, str]) -> dict[str, Any]:
    """The static M4 preset with every run written to the run log in ComfyUI's user folder: M4 Run Logger on the
    final image (the one the Line Quality check judges; it records the same verdict) with the plan, the
    analysis, the reference report and the sketch. M4 Rate Run takes the logger's run_id and starts MUTED, so
    no run is rated unasked: a person un-mutes it (Ctrl+M), picks good or bad and queues again; the rest of
    the graph is cached (fixed seeds), so only the rating runs and it lands on the run just logged."""
    g = m4_graph(defs, api, drivers, unpack_outputs)
    g.name = LOGGED_RUN
    contract = _contract()
    x = _X["out2"] + 380  # a column right of the outputs
    g.add(RUN_LOGGER, "M4RunLogger", (x, _S2), "Run log", "Log this run", width=320)
    g.add(RATE_RUN, "M4RateRun", (x, _S2), "Run log", "Rate it (Ctrl+M, queue again)", width=320)
    g.link(int(contract.feeds["final_image"]), 0, RUN_LOGGER, "image")
    g.link(int(contract.planning["prompts"]), "plan", RUN_LOGGER, "plan")
    g.link(int(contract.planning["analyst"]), "analysis", RUN_LOGGER, "analysis")
    g.link(int(contract.planning["compare"]), "report", RUN_LOGGER, "reference_report")
    g.link(int(contract.images["sketch"]), 0, RUN_LOGGER, "sketch")
    g.link(RUN_LOGGER, "run_id", RATE_RUN, "run_id")
    g.stack_below(RUN_LOGGER, RATE_RUN)
    wf = g.serialise()
    next(n for n in wf["nodes"] if n["id"] == RATE_RUN)["mode"] = MUTED
    return wf


EXAMPLES = (_example_planning, _example_line_quality, _example_adaptive_cfg, _example_adaptive_guider,
            _example_adaptive_ksampler, _example_inbetween, _example_audio_patterns)


def build_all(snapshot: Path = SNAPSHOT) -> dict[str, dict[str, Any]]:
    """file name -> UI workflow, for every generated file."""
    defs = load_snapshot(snapshot)
    api = json.loads(API_TEMPLATE.read_text(encoding="utf-8"))
    drivers, outputs = policy_drivers(), plan_unpack_outputs()
    out = {
        "Animation_Workflow_M4.json": build_m4(defs, api, drivers, outputs),
        "Animation_Workflow_M4_Adaptive.json": build_m4(defs, api, drivers, outputs, adaptive=True),
        f"{LOGGED_RUN}.json": build_logged_run(defs, api, drivers, outputs),
    }
    for make in EXAMPLES:
        graph = make(defs)
        out[f"{graph.name}.json"] = graph.serialise()
    return out


def dumps(wf: dict[str, Any]) -> str:
    return json.dumps(wf, indent=1, ensure_ascii=False) + "\n"


def write_all(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, wf in build_all().items():
        path = out_dir / name
        path.write_text(dumps(wf), encoding="utf-8")
        written.append(path)
    return written


# ---------------------------------------------------------------------------------------------
# Thumbnails (needs a running server with this pack, playwright and chromium)
# ---------------------------------------------------------------------------------------------


def render_thumbnails(url: str, names: Iterable[str], out_dir: Path = WORKFLOWS, max_bytes: int = 100_000) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from host import browser  # the test host's launcher and canvas helpers

    host = browser.launch()
    try:
        context = host.browser.new_context(viewport={"width": 960, "height": 600})
        page = context.new_page()
        browser.open_comfy(page, url)
        for name in names:
            wf = json.loads((out_dir / f"{name}.json").read_text(encoding="utf-8"))
            page.evaluate("async ([wf, name]) => { await app.loadGraphData(wf, true, true, name); }", [wf, name])
            page.wait_for_timeout(300)
            browser.close_templates_dialog(page)
            page.evaluate("() => { app.canvas.show_info = false; }")  # no render stats in the picture
            browser.fit_graph(page)
            target = out_dir / f"{name}.jpg"
            for quality in (0.8, 0.65, 0.5, 0.35):  # the canvas alone: no menus or banners over it
                data = page.evaluate("(q) => app.canvas.canvas.toDataURL('image/jpeg', q)", quality)
                target.write_bytes(base64.b64decode(data.split(",", 1)[1]))
                if target.stat().st_size < max_bytes:
                    break
            print(f"{target.relative_to(REPO)}: {target.stat().st_size} bytes")
        context.close()
    finally:
        host.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=WORKFLOWS, help="folder for the generated UI workflows")
    parser.add_argument("--refresh-snapshot", metavar="URL", help="re-read node definitions from this server")
    parser.add_argument("--thumbnails", metavar="URL", help="render <name>.jpg thumbnails with this server")
    args = parser.parse_args(argv)
    if args.refresh_snapshot:
        refresh_snapshot(args.refresh_snapshot)
        print(f"wrote {SNAPSHOT.relative_to(REPO)}")
    written = write_all(args.out)
    for path in written:
        print(f"wrote {path}")
    if args.thumbnails:
        render_thumbnails(args.thumbnails, [path.stem for path in written], args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
