// M4 Director's web extension: shows each M4 node's report on the node itself.
// Nodes send ui = {m4_panel: [{kind, title, data}]}; the adaptive-CFG nodes also stream
// "m4.guidance" events ({node, sigma, cfg, uncond, index}) that draw the schedule live.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { RENDERERS, renderTable } from "./m4_panels.js";

const PANEL = "m4_panel";

// This pack's node ids (node_list.json; tests/pure/test_web_extension.py keeps the two equal). The panels
// attach to these nodes only, never to another pack's node whose name happens to start with "M4".
const M4_NODE_IDS = [
  "M4VisualAnalyst", "M4ReferenceCompare", "M4AnimationDirector", "M4PromptEngineer", "M4PlanUnpack",
  "M4LineQualityAnalyzer", "M4AdaptiveCFG", "M4AdaptiveGuider", "M4EarlyStopSampler", "M4AdaptiveKSampler",
  "M4RunLogger", "M4RateRun", "M4KeyframeImputer", "M4InbetweenNoiseMask", "M4AudioFeatures", "M4CPPNFrames",
  "M4CLIPGuidedCPPN",
];


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

// Every panel node reserves its panel's height when it is created, so the bundled workflows are laid
// out for it (scripts/build_workflows.py PANEL_HEIGHTS is the same table, kept equal by a test) and a run
// never grows a node over its neighbours: a report taller than the reserve scrolls inside it.
const PANEL_HEIGHTS = {
  M4VisualAnalyst: 260, M4ReferenceCompare: 240, M4AnimationDirector: 420, M4PromptEngineer: 200,
  M4PlanUnpack: 420, M4LineQualityAnalyzer: 180, M4AdaptiveCFG: 140, M4AdaptiveGuider: 140,
  M4EarlyStopSampler: 140, M4AdaptiveKSampler: 270, M4RunLogger: 140, M4RateRun: 140, M4KeyframeImputer: 240,
  M4InbetweenNoiseMask: 140, M4AudioFeatures: 200, M4CPPNFrames: 140, M4CLIPGuidedCPPN: 140,
};

function panelFor(node) {
  if (node.m4Element) return node.m4Element;
  const el = document.createElement("div");
  el.className = "m4-panels";
  const height = PANEL_HEIGHTS[node.type] || PANEL_HEIGHTS[node.comfyClass] || 140;
  el.style.height = `${height}px`;
  node.m4Element = el;
  if (node.addDOMWidget) {
    node.addDOMWidget("m4_report", "m4_report", el, {
      serialize: false,
      hideOnZoom: false,
      getMinHeight: () => height,
      getMaxHeight: () => height,
      getHeight: () => height,
    });
  }
  return el;
}

function showPayloads(node, payloads) {
  node.m4Panel = payloads; // read by the browser tests and handy from the devtools console
  const el = panelFor(node);
  const live = el.querySelector("canvas.m4-live");
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
      el.appendChild((RENDERERS[payload.kind] || renderTable)(payload));
    }
  }
  if (live) el.appendChild(live);
  fitNode(node);
}

// The node keeps its size: only a node smaller than its widgets need (a hand-resized one) grows.
function fitNode(node) {
  if (node.computeSize && node.setSize && node.size) {
    const need = node.computeSize();
    if (need[0] > node.size[0] || need[1] > node.size[1]) {
      node.setSize([Math.max(node.size[0], need[0]), Math.max(node.size[1], need[1])]);
    }
  }
  node.setDirtyCanvas?.(true, true);
}

// The run's last event ({final: true, steps_used, steps, model_calls, uncond_calls}) carries totals, not a
// point: it labels the chart (plotted, it would turn the axis range into NaN and blank the curve).
function liveLabel(node) {
  const f = node.m4LiveFinal;
  if (!f) return "live CFG";
  return `CFG ${f.steps_used}/${f.steps} steps, ${f.model_calls} calls`;
}

function liveStep(detail) {
  const node = app.graph?.getNodeById?.(Number(detail.node)) ?? app.graph?.getNodeById?.(detail.node);
  if (!node) return;
  node.m4Live = node.m4Live || [];
  if (detail.final) {
    node.m4LiveFinal = detail;
  } else {
    if (!Number.isFinite(detail.cfg)) return;
    if (detail.index === 0) { node.m4Live = []; node.m4LiveFinal = null; }
    node.m4Live.push({ index: detail.index, sigma: detail.sigma, cfg: detail.cfg, uncond: detail.uncond });
  }
  const el = panelFor(node);
  let canvas = el.querySelector("canvas.m4-live");
  if (!canvas) {
    canvas = document.createElement("canvas");
    canvas.width = 300; canvas.height = 120;
    canvas.className = "m4-live";
    // The browser may discard a canvas it does not show (memory pressure): redraw when it is given back.
    canvas.addEventListener("contextrestored", () => drawSchedule(canvas, node.m4Live || [], liveLabel(node)));
    el.appendChild(canvas);
  }
  drawSchedule(canvas, node.m4Live, liveLabel(node));
  if (detail.index === 0) fitNode(node);
  else node.setDirtyCanvas?.(true, true);
}

const STYLE = `
.m4-panels { font: 11px sans-serif; color: #d6d9e0; overflow: auto; box-sizing: border-box; }
.m4-bars { display: block; margin: 2px 0; }
.m4-chips { display: flex; flex-wrap: wrap; gap: 3px; margin: 2px 0; }
.m4-chip { background: #2a2f3a; border-radius: 3px; padding: 0 4px; }
.m4-chip.m4-pass { background: #1f5a37; } .m4-chip.m4-fail, .m4-chip.m4-warn { background: #6a2525; }
.m4-notes { white-space: pre-wrap; color: #9aa1b2; margin: 2px 0; } .m4-notes.m4-clamped { color: #ff8a8a; }
.m4-panel details summary { cursor: pointer; color: #9aa1b2; }
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
    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = created?.apply(this, arguments);
      panelFor(this); // reserve the panel before any run (see PANEL_HEIGHTS)
      return result;
    };
    const previous = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      previous?.apply(this, arguments);
      const payloads = message?.[PANEL];
      if (Array.isArray(payloads) && payloads.length) showPayloads(this, payloads);
    };
  },
});
