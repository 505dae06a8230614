// M4 Director's report panels, drawn from the payloads the nodes send (imported by m4_director.js):
// tables of fields, and bars on canvases for the plan, the Visual Analyst, Reference Compare, Line Quality,
// the Keyframe Imputer's frames and the audio features over the clip.
// Built with DOM nodes, textContent and canvas drawing only: report strings come from user images and prompts.

const MAX_ROWS = 40;

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
  inbetween: ["mode", "length", "key_indices", "keys_exact", "unsafe_frames", "mean_chamfer_nearest_key",
    "max_grey_share", "frames"],
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
export function renderTable(payload, skip = []) {
  const box = document.createElement("div");
  box.className = "m4-panel";
  const title = document.createElement("div");
  title.className = "m4-title";
  title.textContent = payload.title || payload.kind;
  box.appendChild(title);
  const table = document.createElement("table");
  const rows = orderedEntries(payload.kind, payload.data || {}).filter(([k]) => !skip.includes(k)).slice(0, MAX_ROWS);
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

// ---- bars drawn on canvases (issue: the plan as a picture) -------------------------------------
// Colours the browser tests count; keep them distinct from each other and from the dark background.
const COLOURS = {
  background: "#15181f", track: "#3a4050", bounds: "#4f7fc0", raw: "#ffffff", final: "#5fd38d",
  clamped: "#ff5a5a", signal: "#f4c542", threshold: "#e040fb", pass: "#5fd38d", fail: "#ff5a5a", text: "#c8ccd6",
};
const BAR = { width: 300, row: 16, top: 4, label: 84, value: 46 }; // px; a row's bar is 10 px high
// The 14 driven values, in the template's order (both samplers, union, OpenPose, both IP-Adapters).
const PLAN_VALUES = ["cfg1", "denoise1", "steps1", "cfg2", "denoise2", "steps2", "union_strength", "union_end",
  "pose_strength", "pose_end", "ip1_weight", "ip1_end_at", "ip2_weight", "ip2_end_at"];
const SIGNALS = ["S", "R", "D", "P", "H"];
// The 0..1 signals drawn as bars, per report kind (other fields stay text).
const BAR_FIELDS = {
  analysis: ["line_quality_score", "construction_lines", "broken_lines", "stroke_width_consistency",
    "overdrawn_strokes", "graphite_texture", "hatching", "line_wobble", "heavy_strokes",
    "complexity_score", "subject_scale", "anatomy_risk_score"],
  reference: ["similarity", "text_conflict", "image_conflict", "conflict_penalty", "style_distance",
    "accessory_conflict", "saturation", "reference_final_score"],
};
const LINE_METRICS = ["broken", "dotted", "fringe", "jitter", "stray"];
const LABELS = {
  line_quality_score: "line quality", construction_lines: "construction", broken_lines: "broken lines",
  stroke_width_consistency: "stroke width", overdrawn_strokes: "overdrawn", graphite_texture: "graphite",
  hatching: "hatching", line_wobble: "wobble", heavy_strokes: "heavy strokes",
  complexity_score: "complexity", subject_scale: "subject scale",
  anatomy_risk_score: "anatomy risk", similarity: "similarity", text_conflict: "text conflict",
  image_conflict: "image conflict", conflict_penalty: "conflict", style_distance: "style dist. D",
  accessory_conflict: "accessory AC", saturation: "saturation", reference_final_score: "reliability R",
};

function num(v) { return typeof v === "number" && Number.isFinite(v); }

// rows: [{label, lo, hi, draw(ctx, x, y, w)}]; the canvas keeps each row's band and hover text in
// dataset.rows (the tests read the geometry there and count pixels; people see `title` on hover).
// A BAR.width canvas of the given height on the panel background, scaled to the node's width (the drawing
// keeps its own pixel grid), with the panels' font set.
function panelCanvas(className, height) {
  const c = document.createElement("canvas");
  c.className = `m4-bars ${className}`;
  c.width = BAR.width;
  c.height = height;
  c.style.width = "100%";
  const ctx = c.getContext("2d");
  ctx.fillStyle = COLOURS.background;
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.font = "10px sans-serif";
  ctx.textBaseline = "middle";
  return [c, ctx];
}

function barCanvas(className, rows, drawRow) {
  const [c, ctx] = panelCanvas(className, BAR.top * 2 + rows.length * BAR.row);
  const x0 = BAR.label, w = BAR.width - BAR.label - BAR.value;
  const bands = rows.map((row, i) => {
    const y = BAR.top + i * BAR.row;
    ctx.fillStyle = row.labelColour || COLOURS.text;
    ctx.fillText(row.label, 2, y + BAR.row / 2);
    drawRow(ctx, row, x0, y + 3, w, 10);
    if (row.valueText) {
      ctx.fillStyle = row.labelColour || COLOURS.text;
      ctx.fillText(row.valueText, x0 + w + 4, y + BAR.row / 2);
    }
    return { field: row.field, y0: y + 3, y1: y + 13, x0, x1: x0 + w, marked: Boolean(row.marked), tip: row.tip };
  });
  c.dataset.rows = JSON.stringify(bands);
  c.addEventListener("mousemove", (e) => {
    const r = c.getBoundingClientRect();
    const y = ((e.clientY - r.top) * c.height) / Math.max(1, r.height);
    const band = bands[Math.floor((y - BAR.top) / BAR.row)];
    c.title = band?.tip || "";
  });
  return c;
}

function xOf(v, lo, hi, x0, w) { return x0 + (Math.min(Math.max(v, lo), hi) - lo) / Math.max(1e-9, hi - lo) * w; }

function drawUnitBar(ctx, row, x0, y, w, h) {
  ctx.fillStyle = COLOURS.track;
  ctx.fillRect(x0, y, w, h);
  ctx.fillStyle = row.fill || COLOURS.signal;
  ctx.fillRect(x0, y, xOf(row.value, 0, 1, x0, w) - x0, h);
  ctx.fillStyle = COLOURS.threshold;
  for (const t of row.marks || []) ctx.fillRect(Math.round(xOf(t, 0, 1, x0, w)) - 1, y - 2, 2, h + 4);
}

function unitRows(fields, data, marks) {
  return fields.filter((f) => num(data[f])).map((f) => ({
    field: f, label: LABELS[f] || f, value: data[f], marks: marks?.[f] || [],
    valueText: data[f].toFixed(2),
    tip: `${f}: ${data[f].toFixed(3)}` + ((marks?.[f] || []).length ? `; thresholds ${marks[f].join(", ")}` : ""),
  }));
}

function clampsOf(diagnostics) {
  const by = {};
  for (const c of diagnostics?.clamps || []) {
    if (!c || typeof c.field !== "string") continue;
    (by[c.field] = by[c.field] || []).push(c);
  }
  return by;
}

function planRows(payload) {
  const d = payload.data || {}, diag = d.diagnostics || {}, clamps = clampsOf(diag);
  return PLAN_VALUES.filter((f) => num(d[f])).map((f) => {
    const final = d[f], raw = num(diag.raw?.[f]) ? diag.raw[f] : final;
    const bounds = Array.isArray(d.bounds?.[f]) ? d.bounds[f] : [final, final];
    const limits = Array.isArray(payload.limits?.[f]) ? payload.limits[f] : bounds;
    const moved = (clamps[f] || []).filter((c) => !num(c.before) || !num(c.after) || Math.abs(c.before - c.after) > 1e-9);
    const why = moved.map((c) => `${c.rule}: ${c.reason} (${fmt(c.before)} -> ${fmt(c.after)})`);
    return {
      field: f, label: f, final, raw, bounds, limits, marked: moved.length > 0,
      labelColour: moved.length ? COLOURS.clamped : undefined, valueText: fmt(final),
      tip: `${f} ${fmt(final)} (raw ${fmt(raw)}); case bounds [${bounds.map(fmt).join(", ")}]; ` +
        `global range [${limits.map(fmt).join(", ")}]` + (why.length ? `\nclamped: ${why.join("; ")}` : ""),
    };
  });
}

function drawRangeRow(ctx, row, x0, y, w, h) {
  const [glo, ghi] = row.limits, x = (v) => xOf(v, glo, ghi, x0, w);
  ctx.fillStyle = COLOURS.track;
  ctx.fillRect(x0, y, w, h);
  ctx.fillStyle = COLOURS.bounds;
  ctx.fillRect(x(row.bounds[0]), y + 2, Math.max(2, x(row.bounds[1]) - x(row.bounds[0])), h - 4);
  const xr = Math.round(x(row.raw)), xf = Math.round(x(row.final));
  if (row.marked) { // the move a clamp or hard rule made, raw -> final
    ctx.fillStyle = COLOURS.clamped;
    ctx.fillRect(Math.min(xr, xf), y + h / 2 - 1, Math.abs(xr - xf), 2);
  }
  ctx.fillStyle = row.marked ? COLOURS.clamped : COLOURS.final;
  ctx.fillRect(xf - 2, y - 2, 5, h + 4);
  ctx.fillStyle = COLOURS.raw; // a thin line over the final marker: both show where they coincide
  ctx.fillRect(xr, y - 3, 1, h + 6);
}

function chips(texts) {
  const el = document.createElement("div");
  el.className = "m4-chips";
  for (const [text, cls] of texts) {
    const chip = document.createElement("span");
    chip.className = `m4-chip ${cls || ""}`;
    chip.textContent = text;
    el.appendChild(chip);
  }
  return el;
}

function titled(payload, ...children) {
  const box = document.createElement("div");
  box.className = "m4-panel";
  const title = document.createElement("div");
  title.className = "m4-title";
  title.textContent = payload.title || payload.kind;
  box.append(title, ...children);
  return box;
}

function notes(lines, cls) {
  const el = document.createElement("div");
  el.className = `m4-notes ${cls || ""}`;
  el.textContent = lines.join("\n");
  return el;
}

function details(payload, skip) {
  const el = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = "all fields";
  el.append(summary, renderTable({ ...payload, title: "" }, skip));
  return el;
}

function renderPlan(payload) {
  const d = payload.data || {}, diag = d.diagnostics || {};
  const rows = planRows(payload);
  const signals = SIGNALS.filter((k) => num(d.signals?.[k])).map((k) => ({
    field: k, label: k, value: d.signals[k], valueText: d.signals[k].toFixed(2), tip: `${k}: ${d.signals[k].toFixed(3)}`,
  }));
  const clamped = rows.filter((r) => r.marked).map((r) => r.tip.split("\n")[1].replace("clamped:", `${r.field}:`));
  const parts = [
    chips([[`case: ${d.case ?? "?"}`], [`scale: ${d.object_scale ?? "?"}`], [`reference: ${diag.reference_mode ?? "?"}`],
      ...(d.is_retry ? [["retry plan", "m4-warn"]] : [])]),
    barCanvas("m4-plan-bars", rows, drawRangeRow),
    barCanvas("m4-signal-bars", signals, drawUnitBar),
  ];
  if (clamped.length) parts.push(notes(clamped, "m4-clamped"));
  const warnings = [...(diag.warnings || []), ...(diag.sanitised || []).map((s) => (typeof s === "string" ? s : compact(s)))];
  if (warnings.length) parts.push(notes(warnings.map(String), "m4-warn"));
  parts.push(details(payload, []));
  return titled(payload, ...parts);
}

function renderSignals(payload) {
  const d = payload.data || {};
  const fields = BAR_FIELDS[payload.kind] || [];
  const rows = unitRows(fields, d, payload.marks);
  const labels = payload.kind === "analysis"
    ? [[`lines: ${d.line_quality ?? "?"}`], [`${d.complexity ?? "?"}`], [`objects: ${d.object_count ?? "?"}`],
       [`anatomy risk: ${d.anatomy_risk ?? "?"}`]]
    : [[d.present ? "reference present" : "no reference"], [d.colored ? "coloured" : "line art"]];
  return titled(payload, chips(labels), barCanvas(`m4-${payload.kind}-bars`, rows, drawUnitBar),
    details(payload, [...fields, "measurements"]));
}

function renderLineQuality(payload) {
  const d = payload.data || {}, th = d.thresholds || {}, scores = Array.isArray(d.scores) ? d.scores : [];
  const failures = Array.isArray(d.failures) ? d.failures : [];
  const rows = LINE_METRICS.filter((m) => scores.some((s) => num(s?.[m]))).map((m) => {
    const worst = Math.max(...scores.map((s) => (num(s?.[m]) ? s[m] : 0)));
    const limit = th[`max_${m}`], failed = failures.includes(m);
    return { field: m, label: m, value: worst, marks: num(limit) ? [limit] : [], fill: failed ? COLOURS.fail : COLOURS.pass,
      marked: failed, labelColour: failed ? COLOURS.fail : undefined, valueText: failed ? "FAIL" : "pass",
      tip: `${m}: ${worst.toFixed(3)} (max ${num(limit) ? limit : "?"}): ${failed ? "fail" : "pass"}` };
  });
  const retry = d.retry && typeof d.retry === "object" ? d.retry : {};
  const steps = Object.entries(retry).filter(([, v]) => num(v)).map(([k, v]) => `${k.replace(/_step$/, "")} -${v}`);
  const verdict = d.passed ? [["PASS", "m4-pass"]] : [["FAIL", "m4-fail"]];
  const parts = [chips(verdict), barCanvas("m4-line-quality-bars", rows, drawUnitBar)];
  if (!d.passed) parts.push(notes([d.retried ? `retry plan: ${steps.join(", ")}` : "no retry plan (no plan given, or it is already a retry)"]));
  return titled(payload, ...parts);
}

// The Keyframe Imputer's frames as columns: height = line distance to the nearest key (the frame's
// departure from the drawings it was made from), keys in green, frames with a safety flag in red,
// and below them the keep weight (1 = kept exactly). dataset.frames holds each column for the tests.
const STRIP = { top: 4, chart: 44, gap: 4, keep: 8, label: 84 };

function renderInbetween(payload) {
  const d = payload.data || {}, ch = d.chart || {}, list = (v) => (Array.isArray(v) ? v : []);
  const keeps = list(ch.keep), keys = new Set(list(d.key_indices)), flagged = new Set(list(d.unsafe_frames));
  const frames = list(ch.cd).map((cd, i) => ({ frame: i, cd, keep: keeps[i], key: keys.has(i), unsafe: flagged.has(i) }));
  const [c, ctx] = panelCanvas("m4-inbetween-frames", STRIP.top * 2 + STRIP.chart + STRIP.gap + STRIP.keep);
  ctx.fillStyle = COLOURS.text;
  ctx.fillText("to nearest key", 2, STRIP.top + STRIP.chart / 2);
  ctx.fillText("keep", 2, STRIP.top + STRIP.chart + STRIP.gap + STRIP.keep / 2);
  const x0 = STRIP.label, w = BAR.width - STRIP.label - 4, n = Math.max(1, frames.length);
  const peak = Math.max(1e-9, ...frames.map((f) => (num(f.cd) ? f.cd : 0)));
  const yKeep = STRIP.top + STRIP.chart + STRIP.gap;
  const cols = frames.map((f, i) => {
    const left = Math.round(x0 + (i * w) / n), right = Math.max(left + 1, Math.round(x0 + ((i + 1) * w) / n) - 1);
    const h = f.key ? STRIP.chart : Math.max(1, Math.round(((num(f.cd) ? f.cd : 0) / peak) * STRIP.chart));
    ctx.fillStyle = COLOURS.track;
    ctx.fillRect(left, STRIP.top, right - left, STRIP.chart);
    ctx.fillStyle = f.key ? COLOURS.pass : f.unsafe ? COLOURS.fail : COLOURS.signal;
    ctx.fillRect(left, STRIP.top + STRIP.chart - h, right - left, h);
    const keep = Math.round((num(f.keep) ? Math.min(Math.max(f.keep, 0), 1) : 0) * STRIP.keep);
    ctx.fillStyle = COLOURS.track;
    ctx.fillRect(left, yKeep, right - left, STRIP.keep);
    ctx.fillStyle = COLOURS.bounds;
    ctx.fillRect(left, yKeep + STRIP.keep - keep, right - left, keep);
    return { frame: f.frame, x0: left, x1: right, key: f.key, unsafe: f.unsafe, height: h };
  });
  c.dataset.frames = JSON.stringify(cols);
  c.addEventListener("mousemove", (e) => {
    const r = c.getBoundingClientRect(), x = ((e.clientX - r.left) * c.width) / Math.max(1, r.width);
    const f = frames[cols.findIndex((col) => x >= col.x0 && x <= col.x1)];
    c.title = f ? `frame ${f.frame}${f.key ? " (key)" : ""}: distance to the nearest key ${fmt(f.cd)}, ` +
      `keep ${fmt(f.keep)}${f.unsafe ? "; flagged (see the frames table)" : ""}` : "";
  });
  const head = chips([[`mode: ${d.mode ?? "?"}`], [`${d.length ?? "?"} frames`],
    d.keys_exact ? ["keys exact", "m4-pass"] : ["keys changed", "m4-fail"],
    ...(flagged.size ? [[`${flagged.size} flagged`, "m4-warn"]] : [])]);
  return titled(payload, head, c, details(payload, ["chart"]));
}

// M4 Audio Features: each feature over the clip as a filled curve (one row each, 0..1), the beats ticked on
// their own row. The rows are barCanvas rows, so the tests count each row's pixels the same way.
function drawCurveRow(ctx, row, x0, y, w, h) {
  ctx.fillStyle = COLOURS.track;
  ctx.fillRect(x0, y, w, h);
  const n = row.values.length;
  if (row.beats) {
    ctx.fillStyle = COLOURS.threshold;
    for (const p of row.values) ctx.fillRect(Math.round(x0 + Math.min(Math.max(p, 0), 1) * (w - 1)), y - 2, 1, h + 4);
    return;
  }
  ctx.fillStyle = COLOURS.signal;
  for (let x = 0; x < w && n; x++) {
    const v = row.values[Math.min(n - 1, Math.floor((x * n) / w))];
    const px = Math.round((num(v) ? Math.min(Math.max(v, 0), 1) : 0) * h);
    if (px) ctx.fillRect(x0 + x, y + h - px, 1, px);
  }
}

function renderAudioFeatures(payload) {
  const d = payload.data || {}, curves = d.curves && typeof d.curves === "object" ? d.curves : {};
  const rows = Object.entries(curves).filter(([, v]) => Array.isArray(v) && v.length).map(([name, v]) => {
    const mean = v.reduce((a, b) => a + (num(b) ? b : 0), 0) / v.length;
    return { field: name, label: name, values: v, valueText: mean.toFixed(2), tip: `${name}: mean ${mean.toFixed(3)} over the clip` };
  });
  const beats = Array.isArray(d.beat_positions) ? d.beat_positions.filter(num) : [];
  rows.push({ field: "beats", label: "beats", values: beats, beats: true, valueText: String(beats.length),
    tip: `${beats.length} beats at ${fmt(d.tempo_bpm)} bpm` });
  const head = chips([[`${fmt(d.duration_s)} s`], [`${d.frames ?? "?"} frames at ${fmt(d.fps)} fps`],
    [`${fmt(d.tempo_bpm)} bpm`], [`${d.onsets ?? "?"} onsets`]]);
  return titled(payload, head, barCanvas("m4-audio-curves", rows, drawCurveRow), details(payload, ["curves", "beat_positions"]));
}

export const RENDERERS = { plan: renderPlan, analysis: renderSignals, reference: renderSignals, line_quality: renderLineQuality,
  inbetween: renderInbetween, audio_features: renderAudioFeatures };
