// M4 Director's web extension: shows each M4 node's report on the node itself.
// Nodes send ui = {m4_panel: [{kind, title, data}]}; the adaptive-CFG nodes also stream
// "m4.guidance" events ({node, sigma, cfg, uncond, index}) that draw the schedule live.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const PANEL = "m4_panel";
const MAX_ROWS = 40;

// This pack's node ids (node_list.json; tests/pure/test_web_extension.py keeps the two equal). The panels
// attach to these nodes only, never to another pack's node whose name happens to start with "M4".
const M4_NODE_IDS = [
  "M4VisualAnalyst", "M4ReferenceCompare", "M4AnimationDirector", "M4PromptEngineer", "M4PlanUnpack",
  "M4LineQualityAnalyzer", "M4AdaptiveCFG", "M4AdaptiveGuider", "M4EarlyStopSampler", "M4AdaptiveKSampler",
];

// Which fields each report kind shows first (the rest follow in the order the server sent them).
const FIRST_FIELDS = {
  analysis: ["image_name", "line_quality", "line_quality_score", "construction_lines", "broken_lines",
    "stroke_width_consistency", "complexity", "complexity_score", "object_count", "subject_scale",
    "anatomy_risk", "subject_tags", "notes"],
  reference: ["present", "reason", "similarity", "conflict_penalty", "style_distance", "colored",
    "accessory_conflict", "reference_final_score"],
  // Plan.to_dict() (agents/planning/plan_types.py): reference_mode and clamps live in diagnostics.
  plan: ["case", "object_scale", "signals", "cfg1", "cfg2", "denoise1", "denoise2", "steps1", "steps2",
    "union_strength", "union_end", "pose_strength", "pose_end", "ip1_weight", "ip1_end_at", "ip2_weight",
    "ip2_end_at", "diagnostics"],
};

function fmt(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(3);
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v !== "object" || v === null)) return value.map(fmt).join(", ");
    return value.map((v) => (typeof v === "object" ? compact(v) : fmt(v))).join("\n");
  }
  if (typeof value === "object") return compact(value);
  return String(value);
}

function compact(obj) {
  return Object.entries(obj).map(([k, v]) => `${k}: ${inline(v)}`).join("; ");
}

// Nested values on one line, numbers rounded (plans carry float noise such as 0.35000000000000003).
function inline(v) {
  if (Array.isArray(v)) return `[${v.map(inline).join(", ")}]`;
  if (v && typeof v === "object") return `{${Object.entries(v).map(([k, x]) => `${k}: ${inline(x)}`).join(", ")}}`;
  return fmt(v);
}

function orderedEntries(kind, data) {
  const first = FIRST_FIELDS[kind] || [];
  const keys = [...first.filter((k) => k in data), ...Object.keys(data).filter((k) => !first.includes(k))];
  return keys.map((k) => [k, data[k]]);
}

// Built with DOM nodes and textContent only: report strings come from user images and prompts.
function renderTable(payload) {
  const box = document.createElement("div");
  box.className = "m4-panel";
  const title = document.createElement("div");
  title.className = "m4-title";
  title.textContent = payload.title || payload.kind;
  box.appendChild(title);
  const table = document.createElement("table");
  const rows = orderedEntries(payload.kind, payload.data || {}).slice(0, MAX_ROWS);
  for (const [key, value] of rows) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = key;
    const td = document.createElement("td");
    td.textContent = fmt(value);
    tr.append(th, td);
    table.appendChild(tr);
  }
  box.appendChild(table);
  return box;
}

// The adaptive samplers' summary (agents/guidance/controller.py summary()): one record per model call in
// `calls`; `steps` and `schedule` there are a count and a name.
function scheduleOf(payload) {
  const calls = payload.data?.calls;
  return Array.isArray(calls) ? calls.map((s) => ({ index: s.index, sigma: s.sigma, cfg: s.cfg, uncond: s.uncond })) : [];
}

function drawSchedule(canvas, points, label) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 24;
  ctx.fillStyle = "#15181f";
  ctx.fillRect(0, 0, w, h);
  if (!points.length) return;
  const cfgs = points.map((p) => p.cfg);
  const lo = Math.min(1, ...cfgs), hi = Math.max(...cfgs, lo + 1);
  const x = (i) => pad + (i / Math.max(1, points.length - 1)) * (w - 2 * pad);
  const y = (v) => h - pad - ((v - lo) / (hi - lo)) * (h - 2 * pad);
  ctx.strokeStyle = "#3a4050";
  ctx.beginPath(); ctx.moveTo(pad, y(1)); ctx.lineTo(w - pad, y(1)); ctx.stroke();
  ctx.strokeStyle = "#f4c542";
  ctx.beginPath();
  points.forEach((p, i) => (i ? ctx.lineTo(x(i), y(p.cfg)) : ctx.moveTo(x(i), y(p.cfg))));
  ctx.stroke();
  points.forEach((p, i) => {
    ctx.fillStyle = p.uncond === false ? "#5fd38d" : "#f4c542";
    ctx.fillRect(x(i) - 2, y(p.cfg) - 2, 4, 4);
  });
  ctx.fillStyle = "#c8ccd6";
  ctx.font = "11px sans-serif";
  ctx.fillText(`${label}  cfg ${lo.toFixed(1)}–${hi.toFixed(1)}  green = uncond skipped`, pad, 14);
}

function panelFor(node) {
  if (node.m4Element) return node.m4Element;
  const el = document.createElement("div");
  el.className = "m4-panels";
  node.m4Element = el;
  if (node.addDOMWidget) {
    node.addDOMWidget("m4_report", "m4_report", el, {
      serialize: false,
      hideOnZoom: false,
      getMinHeight: () => node.m4Height || 40,
      getMaxHeight: () => 480,
    });
  }
  return el;
}

function showPayloads(node, payloads) {
  node.m4Panel = payloads; // read by the browser tests and handy from the devtools console
  const el = panelFor(node);
  el.replaceChildren();
  for (const payload of payloads) {
    if (payload.kind === "schedule") {
      const canvas = document.createElement("canvas");
      canvas.width = 300; canvas.height = 120;
      canvas.className = "m4-schedule";
      const pts = scheduleOf(payload);
      drawSchedule(canvas, pts, payload.title || "guidance schedule");
      el.appendChild(canvas);
    } else {
      el.appendChild(renderTable(payload));
    }
  }
  fitNode(node, payloads);
}

// The DOM widget is sized by the graph before the browser lays it out: estimate from the rows.
function fitNode(node, payloads) {
  let height = 8;
  for (const p of payloads) {
    height += p.kind === "schedule" ? 128 : 20 + 16 * Math.min(MAX_ROWS, Object.keys(p.data || {}).length);
  }
  if (node.m4Live?.length) height += 128;
  node.m4Height = Math.min(480, height);
  if (node.computeSize && node.setSize) {
    node.setSize([Math.max(node.size?.[0] ?? 0, 340), node.computeSize()[1]]);
  }
  node.setDirtyCanvas?.(true, true);
}

function liveStep(detail) {
  const node = app.graph?.getNodeById?.(Number(detail.node)) ?? app.graph?.getNodeById?.(detail.node);
  if (!node) return;
  node.m4Live = node.m4Live || [];
  if (detail.index === 0) node.m4Live = [];
  node.m4Live.push({ index: detail.index, sigma: detail.sigma, cfg: detail.cfg, uncond: detail.uncond });
  const el = panelFor(node);
  let canvas = el.querySelector("canvas.m4-live");
  if (!canvas) {
    canvas = document.createElement("canvas");
    canvas.width = 300; canvas.height = 120;
    canvas.className = "m4-live";
    // The browser may discard a canvas it does not show (memory pressure): redraw when it is given back.
    canvas.addEventListener("contextrestored", () => drawSchedule(canvas, node.m4Live || [], "live CFG"));
    el.appendChild(canvas);
  }
  drawSchedule(canvas, node.m4Live, "live CFG");
  if (detail.index === 0) fitNode(node, node.m4Panel || []);
  else node.setDirtyCanvas?.(true, true);
}

const STYLE = `
.m4-panels { font: 11px sans-serif; color: #d6d9e0; overflow: auto; max-height: 420px; }
.m4-panel { margin: 2px 0 6px; }
.m4-title { font-weight: 600; color: #f4c542; margin-bottom: 2px; }
.m4-panel table { border-collapse: collapse; width: 100%; }
.m4-panel th { text-align: left; font-weight: 400; color: #9aa1b2; padding-right: 6px; vertical-align: top; white-space: nowrap; }
.m4-panel td { white-space: pre-wrap; word-break: break-word; }
`;

app.registerExtension({
  name: "m4director.panel",
  async setup() {
    const style = document.createElement("style");
    style.textContent = STYLE;
    document.head.appendChild(style);
    api.addEventListener("m4.guidance", (event) => liveStep(event.detail));
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!M4_NODE_IDS.includes(String(nodeData?.name || ""))) return;
    const previous = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      previous?.apply(this, arguments);
      const payloads = message?.[PANEL];
      if (Array.isArray(payloads) && payloads.length) showPayloads(this, payloads);
    };
  },
});
