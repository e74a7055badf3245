// Weir's dashboard: polls the REST API once a second and redraws the view that is shown.
"use strict";

const POLL_MS = 1000;
const state = { job: null, selected: null, previous: null, rates: {} };

// An element with attributes and children (strings become text, so nothing is parsed as HTML).
function h(tag, attrs, ...children) {
  const svg = ["svg", "g", "rect", "line", "text", "polygon", "title", "defs", "marker", "path"];
  const el = svg.includes(tag)
    ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (value !== null && value !== undefined) el.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    el.append(typeof child === "object" ? child : String(child));
  }
  return el;
}

function table(headers, rows, attrs) {
  return h("table", attrs, h("tr", {}, headers.map((t) => h("th", {}, t))), rows);
}

function cell(value, numeric) {
  return h("td", numeric ? { class: "num" } : {}, value);
}

async function get(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

const duration = (ms) => {
  const s = Math.floor(ms / 1000);
  return s >= 3600 ? `${Math.floor(s / 3600)}h ${Math.floor(s / 60) % 60}m`
    : s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${(ms / 1000).toFixed(1)}s`;
};
const bytes = (n) => n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB`
  : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB`
  : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
const count = (n) => n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}K` : `${n}`;
const percent = (r) => `${Math.round(r * 100)}%`;
const time = (ms) => new Date(ms).toISOString().replace("T", " ").replace("Z", "");
const watermark = (w) => w === null ? "none" : new Date(w).toISOString().slice(11, 23);

function show(id, ...content) {
  document.getElementById(id).replaceChildren(...content.flat().filter((c) => c !== null));
}

// ---- overview

function renderOverview(jobs, workers) {
  const jobRows = jobs.jobs.map((job) => h("tr", {},
    cell(job.name), h("td", { class: `state-${job.state}` }, job.state),
    cell(duration(job.duration_ms), true), cell(job.parallelism, true), cell(job.restarts, true)));
  const workerRows = workers.workers.map((w) => h("tr", {},
    cell(w.name), cell(w.slots, true),
    cell(w.memory ? bytes(w.memory.process) : "not configured", true),
    cell(w.memory ? w.memory.components.map((c) => `${c.name} ${bytes(c.bytes)}`).join(", ") : "")));
  show("overview",
    h("h2", {}, "Jobs"),
    table(["job", "state", "uptime", "parallelism", "restarts"], jobRows, { id: "jobs-table" }),
    h("h2", {}, "Workers"),
    table(["worker", "slots", "memory", "breakdown"], workerRows, { id: "workers-table" }));
}

// ---- job graph

// Records per second per vertex, from the counts of the previous poll.
function updateRates(job, now) {
  const previous = state.previous;
  if (previous && previous.name === job.name) {
    const seconds = Math.max((now - previous.at) / 1000, 0.001);
    for (const v of job.vertices) {
      const before = previous.vertices[v.id];
      if (before) {
        state.rates[v.id] = {
          in: Math.max(v.records_in - before.records_in, 0) / seconds,
          out: Math.max(v.records_out - before.records_out, 0) / seconds,
        };
      }
    }
  }
  state.previous = { name: job.name, at: now, vertices: job.vertices };
}

// Busy vertices turn red, backpressured ones purple, idle ones stay grey-green.
function load(v) {
  if (v.backpressured_ratio >= 0.5 && v.backpressured_ratio >= v.busy_ratio) return "backpressured";
  if (v.busy_ratio >= 0.5) return "busy";
  return "idle";
}

function fill(v) {
  const mix = (from, to, r) => from.map((c, i) => Math.round(c + (to[i] - c) * r));
  const base = [221, 238, 221];
  const rgb = v.backpressured_ratio > v.busy_ratio
    ? mix(base, [150, 110, 200], v.backpressured_ratio)
    : mix(base, [229, 83, 83], v.busy_ratio);
  return `rgb(${rgb.join(",")})`;
}

// Columns by longest path from a source, rows in graph order.
function layout(job) {
  const depth = job.vertices.map(() => 0);
  for (let round = 0; round < job.vertices.length; round++) {
    for (const e of job.edges) depth[e.target] = Math.max(depth[e.target], depth[e.source] + 1);
  }
  const rows = {};
  return job.vertices.map((v) => {
    const column = depth[v.id];
    rows[column] = (rows[column] || 0) + 1;
    return { x: 20 + column * 290, y: 20 + (rows[column] - 1) * 130 };
  });
}

const W = 230;
const H = 100;

function vertexBox(v, at) {
  const rate = state.rates[v.id];
  const held = v.watermark_held_back_by;
  const wm = v.idle ? "idle" : watermark(v.watermark);
  const lines = [
    `parallelism ${v.parallelism}`,
    `in ${count(v.records_in)}${rate ? ` (${count(Math.round(rate.in))}/s)` : ""}` +
      ` · out ${count(v.records_out)}${rate ? ` (${count(Math.round(rate.out))}/s)` : ""}`,
    `busy ${percent(v.busy_ratio)} · backpressured ${percent(v.backpressured_ratio)}`,
    `watermark ${wm}`,
    held ? `held back by ${held.name} #${held.subtask + 1}` : v.idle_inputs.length ? `${v.idle_inputs.length} idle input(s)` : "",
  ];
  const selected = state.selected === v.id ? " selected" : "";
  return h("g", {
    class: `vertex${selected}`, "data-vertex": v.id, "data-name": v.name, "data-load": load(v),
    transform: `translate(${at.x},${at.y})`,
    onclick: () => { state.selected = v.id; refresh(); },
  },
  h("title", {}, v.name),
  h("rect", { width: W, height: H, rx: 6, fill: fill(v) }),
  h("text", { x: 8, y: 16, class: "title" }, v.name.length > 34 ? `${v.name.slice(0, 33)}…` : v.name),
  lines.map((line, i) => h("text", { x: 8, y: 32 + i * 15 }, line)));
}

function edgeLine(e, from, to) {
  const x1 = from.x + W;
  const y1 = from.y + H / 2;
  const x2 = to.x;
  const y2 = to.y + H / 2;
  const label = e.chained ? `${e.partitioning} (chained)` : e.partitioning;
  return h("g", { class: "edge" },
    h("line", { x1, y1, x2, y2, "marker-end": "url(#arrow)" }),
    h("text", { x: (x1 + x2) / 2 - 25, y: (y1 + y2) / 2 - 6 }, label));
}

function subtaskTable(v) {
  const rows = v.subtasks.map((s) => h("tr", {},
    cell(s.subtask + 1, true), cell(s.records_in, true), cell(s.records_out, true),
    cell(percent(s.busy_ratio), true), cell(percent(s.backpressured_ratio), true),
    cell(percent(s.idle_ratio), true), cell(s.idle ? "idle" : watermark(s.watermark))));
  return [
    h("h3", {}, `${v.name}: subtasks`),
    table(["subtask", "records in", "records out", "busy", "backpressured", "idle", "watermark"],
      rows, { id: "subtasks-table" }),
  ];
}

function renderGraph(job) {
  const at = layout(job);
  const width = Math.max(...at.map((p) => p.x)) + W + 20;
  const height = Math.max(...at.map((p) => p.y)) + H + 20;
  const svg = h("svg", { id: "job-graph", width, height, viewBox: `0 0 ${width} ${height}` },
    h("defs", {}, h("marker", { id: "arrow", markerWidth: 10, markerHeight: 8, refX: 10, refY: 4, orient: "auto" },
      h("polygon", { points: "0 0, 10 4, 0 8", fill: "#778" }))),
    job.edges.map((e) => edgeLine(e, at[e.source], at[e.target])),
    job.vertices.map((v) => vertexBox(v, at[v.id])));
  const selected = job.vertices.find((v) => v.id === state.selected);
  show("graph",
    h("p", { class: "legend" }, "Colour: ",
      h("span", { style: "background: rgb(221,238,221)" }, "idle"),
      h("span", { style: "background: rgb(229,83,83)" }, "busy"),
      h("span", { style: "background: rgb(150,110,200)" }, "backpressured"),
      h("span", { class: "note" }, "click a vertex for its subtasks")),
    svg,
    selected ? subtaskTable(selected) : null);
}

// ---- checkpoints

async function triggerSavepoint() {
  const button = document.getElementById("trigger-savepoint");
  const result = document.getElementById("savepoint-result");
  button.disabled = true;
  result.textContent = "taking a savepoint…";
  try {
    const response = await fetch(`/jobs/${encodeURIComponent(state.job)}/savepoints`, { method: "POST" });
    const body = await response.json();
    result.textContent = response.ok ? `savepoint taken: ${body.location}` : `savepoint failed: ${body.error}`;
  } catch (error) {
    result.textContent = `savepoint failed: ${error}`;
  }
  button.disabled = false;
  refresh();
}
document.getElementById("trigger-savepoint").addEventListener("click", triggerSavepoint);

function renderCheckpoints(checkpoints) {
  const rows = checkpoints.history.slice().reverse().map((c) => h("tr", { "data-kind": c.kind, "data-status": c.status },
    cell(c.id, true), cell(c.savepoint_format ? `${c.kind} (${c.savepoint_format})` : c.kind), h("td", { class: `status-${c.status}` }, c.status),
    cell(`${c.duration_ms} ms`, true), cell(bytes(c.state_size), true),
    cell(bytes(c.incremental_size), true), cell(`${c.alignment_ms} ms`, true),
    cell(c.unaligned ? "yes" : "no"), cell(c.failure || c.location)));
  show("checkpoints-data",
    h("p", {}, `completed ${checkpoints.completed} · failed ${checkpoints.failed}`),
    h("p", {}, "Latest savepoint: ", h("span", { id: "latest-savepoint" }, checkpoints.latest_savepoint || "none")),
    table(["id", "kind", "status", "duration", "size", "incremental", "alignment", "unaligned", "location / failure"],
      rows, { id: "checkpoints-table" }));
}

// ---- exceptions

function renderExceptions(exceptions) {
  const rows = exceptions.history.map((f) => h("tr", {},
    cell(time(f.time_ms)), cell(f.operator || ""), h("td", { class: "message" }, f.message)));
  show("exceptions",
    h("p", { id: "restarts" },
      `restarts ${exceptions.restarts} · restarts left ${exceptions.restarts_remaining}`),
    rows.length ? table(["time", "operator", "message"], rows, { id: "exceptions-table" })
      : h("p", { class: "note" }, "no failures"));
}

// ---- polling

function view() {
  const name = location.hash.slice(1);
  return ["overview", "graph", "checkpoints", "exceptions"].includes(name) ? name : "overview";
}

async function refresh() {
  const current = view();
  for (const section of document.querySelectorAll("main section")) {
    section.classList.toggle("active", section.id === current);
  }
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.view === current);
  }
  try {
    const [jobs, workers] = await Promise.all([get("/jobs"), get("/workers")]);
    const select = document.getElementById("job");
    const names = jobs.jobs.map((j) => j.name);
    if (!names.includes(state.job)) state.job = names[names.length - 1] || null;
    if ([...select.options].map((o) => o.value).join() !== names.join()) {
      select.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
    }
    select.value = state.job;
    renderOverview(jobs, workers);
    if (state.job) {
      const job = encodeURIComponent(state.job);
      const [details, checkpoints, exceptions] = await Promise.all([
        get(`/jobs/${job}`), get(`/jobs/${job}/checkpoints`), get(`/jobs/${job}/exceptions`)]);
      updateRates(details, Date.now());
      renderGraph(details);
      renderCheckpoints(checkpoints);
      renderExceptions(exceptions);
    }
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    document.getElementById("updated").textContent = `cannot reach the API: ${error.message}`;
  }
}

document.getElementById("job").addEventListener("change", (event) => {
  state.job = event.target.value;
  state.selected = null;
  refresh();
});
window.addEventListener("hashchange", refresh);
refresh();
setInterval(refresh, POLL_MS);
