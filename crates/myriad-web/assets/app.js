// The myriad dashboard: runs list, start form, live run view.
"use strict";
const C = window.MyriadCharts;
const $ = (id) => document.getElementById(id);

// A token given in the address has been turned into a cookie by the server;
// take it out of the address bar (and of bookmarks and screenshots).
if (location.search.includes("token=")) history.replaceState(null, "", location.pathname + location.hash);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

async function api(path, opts) {
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    throw new Error("the server cannot be reached (" + e.message + "); is `myriad serve` still running?");
  }
  const kind = resp.headers.get("content-type") || "";
  if (!resp.ok) {
    let text = resp.status + " " + resp.statusText;
    if (kind.includes("json")) { const j = await resp.json(); if (j.error) text = j.error; }
    const err = new Error(text); err.status = resp.status; throw err;
  }
  if (kind.includes("json")) return resp.json();
  return resp.arrayBuffer();
}

function showError(box, err) {
  if (!err) { box.hidden = true; box.textContent = ""; return; }
  box.hidden = false;
  box.textContent = err.message || String(err);
}

function duration(s) {
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return (s / 60).toFixed(1) + " min";
  return (s / 3600).toFixed(1) + " h";
}

// ---------------------------------------------------------------- runs view
const compare = new Set();
let runsTimer = null;

async function loadScenarios() {
  const sel = $("scenario-select");
  try {
    const list = await api("/api/scenarios");
    sel.replaceChildren(el("option", { value: "" }, "(choose)"),
      ...list.map((s) => el("option", { value: s.file, title: s.about || "" },
        `${s.file} — ${s.model || "?"}${s.steps ? ", " + s.steps + " steps" : ""}`)));
  } catch (e) {
    sel.replaceChildren(el("option", { value: "" }, "(no scenarios folder: " + e.message + ")"));
  }
}

async function loadRuns() {
  let runs;
  try {
    runs = await api("/api/runs");
    setConn(true);
  } catch (e) { setConn(false, e.message); return; }
  const body = $("runs-table").querySelector("tbody");
  body.replaceChildren(...runs.map((r) => {
    const box = el("input", { type: "checkbox", "data-id": r.id });
    box.checked = compare.has(r.id);
    box.addEventListener("click", (ev) => {
      ev.stopPropagation();
      if (box.checked) compare.add(r.id); else compare.delete(r.id);
      while (compare.size > 2) compare.delete(compare.values().next().value);
      drawCompare(true);
      loadRuns();
    });
    const tr = el("tr", { class: "clickable", "data-id": r.id },
      el("td", {}, box), el("td", {}, r.id), el("td", {}, r.scenario), el("td", {}, r.model),
      el("td", {}, r.agents.toLocaleString()), el("td", {}, `${r.steps}/${r.steps_requested}`),
      el("td", {}, el("span", { class: "badge " + r.status, title: r.error || "" }, r.status + (r.live ? " ●" : ""))),
      el("td", {}, duration(r.wall_seconds)), el("td", {}, r.seed));
    tr.addEventListener("click", () => { location.hash = "#/run/" + encodeURIComponent(r.id) + "/metrics"; });
    return tr;
  }));
}

let compareData = {};
async function drawCompare(reload) {
  const ids = [...compare];
  const sel = $("compare-metric");
  if (ids.length < 2) { sel.replaceChildren(); C.lineChart($("compare-chart"), { title: "tick two runs", series: [] }); return; }
  if (reload) {
    compareData = {};
    for (const id of ids) {
      try { compareData[id] = await api(`/api/runs/${encodeURIComponent(id)}/series`); }
      catch (e) { C.lineChart($("compare-chart"), { title: id + ": " + e.message, series: [] }); return; }
    }
    const common = compareData[ids[0]].metrics.filter((m) => compareData[ids[1]].metrics.includes(m));
    const keep = sel.value;
    sel.replaceChildren(...common.map((m) => el("option", { value: m }, m)));
    if (common.includes(keep)) sel.value = keep;
  }
  const m = sel.value;
  const series = ids.map((id) => {
    const s = compareData[id];
    const k = s.metrics.indexOf(m);
    return { label: id, xs: s.steps, ys: k >= 0 ? s.values[k] : [] };
  });
  C.lineChart($("compare-chart"), { title: m, ylabel: m, series });
}

async function startRun(ev) {
  ev.preventDefault();
  const box = $("start-error");
  showError(box, null);
  const body = {
    set: $("overrides").value.split("\n").map((s) => s.trim()).filter((s) => s),
    paused: $("start-paused").checked,
  };
  const file = $("scenario-file").files[0];
  if (file) { body.toml = await file.text(); body.filename = file.name; }
  else if ($("scenario-select").value) body.scenario = $("scenario-select").value;
  else { showError(box, new Error("choose a scenario or upload a scenario file")); return; }
  if ($("seed").value !== "") body.seed = Number($("seed").value);
  if ($("threads").value !== "") body.threads = Number($("threads").value);
  if ($("outname").value.trim()) body.out = $("outname").value.trim();
  $("start-button").disabled = true;
  try {
    const r = await api("/api/runs", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    location.hash = "#/run/" + encodeURIComponent(r.id) + "/metrics";
  } catch (e) { showError(box, e); }
  finally { $("start-button").disabled = false; }
}

function setConn(ok, why) {
  const c = $("conn");
  c.textContent = ok ? "connected" : "server unreachable";
  c.className = "conn" + (ok ? "" : " down");
  c.title = why || "";
}

// ---------------------------------------------------------------- run view
let run = null; // {id, info, layout, kinds, series, source, live}

function metricIndex(name) { return run.series.metrics.indexOf(name); }

function dateOf(step) {
  const s = run.series;
  if (!s.dates) return null;
  const i = step - s.steps[0];
  if (i >= 0 && i < s.dates.length && s.steps[i] === step) return s.dates[i];
  const k = s.steps.indexOf(step);
  return k >= 0 ? s.dates[k] : null;
}

function panelsOf() {
  const layout = run.layout || {};
  if (layout.panels && layout.panels.length) return layout.panels;
  const by = (kind) => run.series.metrics.filter((m, i) => (run.kinds[i] || "value") === kind);
  const groups = [];
  if (!run.kinds.length) return [{ ylabel: "value", metrics: run.series.metrics.slice(0, 8), bars: false }];
  for (const [kind, label] of [["stock", "agents"], ["flow", "per step"], ["fraction", "share"], ["value", "value"]]) {
    const ms = by(kind).filter((m) => !/_[A-Z]{2}$/.test(m));
    for (let i = 0; i < ms.length; i += 8) groups.push({ ylabel: label, metrics: ms.slice(i, i + 8), bars: false });
  }
  return groups;
}

const charts = [];
function buildCharts() {
  const box = $("charts");
  box.replaceChildren();
  charts.length = 0;
  for (const p of panelsOf()) {
    const canvas = el("canvas", { class: "chart" });
    box.append(el("div", { class: "card" }, canvas));
    charts.push({ canvas, panel: p });
  }
  for (const o of (run.layout && run.layout.observed) || []) {
    const canvas = el("canvas", { class: "chart" });
    box.append(el("div", { class: "card" }, canvas));
    charts.push({ canvas, observed: o });
  }
}

let firstChartAt = null;
function drawCharts() {
  if (!run || !run.info) return;
  const s = run.series;
  const dates = s.dates ? (x) => dateOf(Math.round(x)) : null;
  for (const c of charts) {
    if (c.panel && c.panel.bars) {
      const last = s.steps.length - 1;
      const ms = c.panel.metrics.filter((m) => metricIndex(m) >= 0);
      C.barChart(c.canvas, { title: c.panel.ylabel + (last >= 0 ? ` (step ${s.steps[last]})` : ""), ylabel: c.panel.ylabel,
        labels: ms, values: ms.map((m) => last >= 0 ? s.values[metricIndex(m)][last] : 0) });
    } else if (c.panel) {
      const series = c.panel.metrics.filter((m) => metricIndex(m) >= 0)
        .map((m) => ({ label: m, xs: s.steps, ys: s.values[metricIndex(m)] }));
      C.lineChart(c.canvas, { title: c.panel.ylabel, ylabel: c.panel.ylabel, series, dates, xmin: 0, xmax: run.info.steps_requested });
    } else if (c.observed) {
      const o = c.observed;
      const k = metricIndex(o.metric);
      const lastStep = s.steps.length ? s.steps[s.steps.length - 1] : -1;
      const model = { label: `model ${o.metric} per ${o.period}`, xs: [], ys: [] };
      for (const p of o.points) {
        if (k < 0 || p.last > lastStep) break;
        let sum = 0;
        for (let st = p.first; st <= p.last; st++) { const i = s.steps.indexOf(st); if (i >= 0) sum += s.values[k][i]; }
        model.xs.push(p.last); model.ys.push(sum);
      }
      const obs = { label: "observed: " + o.label, xs: o.points.map((p) => p.last), ys: o.points.map((p) => p.value), markers: true, color: "#111" };
      C.lineChart(c.canvas, { title: `${o.metric} per ${o.period} against the observed series`, ylabel: "per " + o.period,
        series: [model, obs], dates, xmin: 0, xmax: run.info.steps_requested });
    }
  }
  if (firstChartAt === null && s.steps.length) { firstChartAt = performance.now(); window.myriadFirstChart = firstChartAt; }
  drawAreas();
}

// Charts are redrawn at most twice a second: a run of short steps sends
// dozens of rows a second, and a browser on the same machine redrawing at
// every row takes CPU time from the simulation.
const DRAW_EVERY_MS = 500;
let drawPending = false, lastDraw = -Infinity;
function scheduleDraw() {
  if (drawPending) return;
  drawPending = true;
  // Until the first chart with data is up, draw at once.
  const wait = firstChartAt === null ? 0 : Math.max(0, lastDraw + DRAW_EVERY_MS - performance.now());
  setTimeout(() => requestAnimationFrame(() => {
    drawPending = false; lastDraw = performance.now(); drawCharts(); updateHead();
  }), wait);
}

function updateHead() {
  if (!run || !run.info) return;
  const i = run.info;
  $("run-title").textContent = i.id;
  $("run-sub").textContent = `${i.scenario} · model ${i.model} · ${i.agents.toLocaleString()} agents · seed ${i.seed}` +
    (run.live ? "" : " · finished before this page opened (read from its folder)");
  const st = $("run-status");
  st.textContent = i.status; st.className = "badge " + i.status;
  const s = run.series;
  const last = s.steps.length ? s.steps[s.steps.length - 1] : 0;
  const d = s.dates && s.dates.length ? " · " + s.dates[s.dates.length - 1] : "";
  $("run-step").textContent = `step ${last} / ${i.steps_requested}${d}`;
  const active = run.live && ["building", "running", "paused"].includes(i.status);
  $("btn-pause").disabled = !active || i.status === "paused";
  $("btn-resume").disabled = !active || i.status !== "paused";
  $("btn-step").disabled = !active || i.status !== "paused";
  $("btn-stop").disabled = !active;
  showError($("run-error"), i.error ? new Error(i.error) : null);
}

function onMessage(m) {
  if (m.type === "hello") {
    run.info = m.run; run.layout = m.layout; run.kinds = m.kinds || [];
    const had = run.series && run.series.metrics.length;
    run.series = m.series;
    if (!had || !charts.length) buildCharts();
  } else if (m.type === "row") {
    const s = run.series;
    if (!s.metrics.length) return;
    if (s.steps.length && m.step <= s.steps[s.steps.length - 1]) return; // already have it
    s.steps.push(m.step);
    if (s.dates && m.date) s.dates.push(m.date);
    m.row.forEach((v, k) => s.values[k].push(v === null ? NaN : v));
    run.info.steps = m.step;
  } else if (m.type === "status") {
    run.info.status = m.status;
    if (m.error) run.info.error = m.error;
    if (!["building", "running", "paused"].includes(m.status) && run.source) { run.source.close(); run.source = null; refreshRunInfo(); }
    if (m.status === "paused" && currentTab() === "space") refreshSpace();
  } else if (m.type === "events") {
    if (currentTab() === "transcript") loadTranscript();
  }
  scheduleDraw();
  if (currentTab() === "agents" && m.type === "row") refreshAgentSoon();
}

async function refreshRunInfo() {
  try {
    const d = await api(`/api/runs/${encodeURIComponent(run.id)}`);
    run.info = d.run; scheduleDraw();
  } catch (e) { /* keep what we have */ }
}

async function openRun(id, tab) {
  if (run && run.id === id) { selectTab(tab); return; }
  closeRun();
  run = { id, info: null, layout: null, kinds: [], series: { metrics: [], steps: [], values: [], dates: null }, source: null, live: false };
  firstChartAt = null;
  $("runs-view").hidden = true; $("run-view").hidden = false;
  selectTab(tab);
  let detail;
  try {
    detail = await api(`/api/runs/${encodeURIComponent(id)}`);
  } catch (e) {
    showError($("run-error"), e);
    $("run-title").textContent = id;
    return;
  }
  run.info = detail.run; run.layout = detail.layout; run.live = detail.run.live;
  if (detail.run.live) {
    connectStream();
  } else {
    try { run.series = await api(`/api/runs/${encodeURIComponent(id)}/series`); }
    catch (e) { showError($("run-error"), e); }
    run.kinds = [];
    buildCharts();
  }
  scheduleDraw();
  selectTab(tab);
}

function connectStream() {
  const id = run.id;
  const src = new EventSource(`/api/runs/${encodeURIComponent(id)}/stream`);
  run.source = src;
  src.onmessage = (ev) => { if (run && run.id === id) { setConn(true); $("banner").hidden = true; onMessage(JSON.parse(ev.data)); } };
  src.onerror = async () => {
    if (!run || run.id !== id) return;
    const closed = src.readyState === EventSource.CLOSED;
    if (!closed) {
      setConn(false);
      banner("Lost the connection to the server; retrying…");
    }
    // After a restart the run is not live any more (the stream answers
    // 409): stop retrying and show what the run wrote to its folder.
    let d;
    try { d = await api(`/api/runs/${encodeURIComponent(id)}`); }
    catch (e) { if (closed) banner(e.message); return; /* still down: EventSource retries */ }
    setConn(true);
    if (d.run.live) { if (closed) connectStream(); return; }
    src.close(); run.source = null; run.live = false; run.info = d.run;
    banner(`The server restarted: run ${id} is no longer live. Showing what it wrote to its folder.`);
    try { run.series = await api(`/api/runs/${encodeURIComponent(id)}/series`); } catch (e) { showError($("run-error"), e); }
    buildCharts(); scheduleDraw();
  };
}

function banner(text) { const b = $("banner"); b.textContent = text; b.hidden = !text; }

function closeRun() {
  if (run && run.source) run.source.close();
  run = null;
  clearInterval(llmTimer); llmTimer = null;
  clearTimeout(spaceTimer); spaceTimer = null;
  banner("");
}

async function control(action) {
  try {
    await api(`/api/runs/${encodeURIComponent(run.id)}/${action}`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    if (action === "pause") { run.info.status = run.info.status === "running" ? "pausing…" : run.info.status; scheduleDraw(); }
  } catch (e) { showError($("run-error"), e); }
}

// ---------------------------------------------------------------- tabs
function currentTab() { const a = document.querySelector(".tabs a.active"); return a ? a.dataset.tab : "metrics"; }
function selectTab(tab) {
  tab = tab || "metrics";
  for (const a of document.querySelectorAll(".tabs a")) a.classList.toggle("active", a.dataset.tab === tab);
  for (const t of document.querySelectorAll(".tab")) t.hidden = t.id !== "tab-" + tab;
  if (!run) return;
  if (tab === "metrics") scheduleDraw();
  if (tab === "llm") startLlm(); else { clearInterval(llmTimer); llmTimer = null; }
  if (tab === "space") refreshSpace(); else { clearTimeout(spaceTimer); spaceTimer = null; }
  if (tab === "areas") { fillAreas(); drawAreas(); }
  if (tab === "transcript") loadTranscript();
}

// ---------------------------------------------------------------- agents
let inspected = null, agentTimer = null;
async function inspect(id) {
  inspected = id;
  $("agent-title").textContent = "Agent " + id;
  const box = $("agent-error");
  let a;
  try { a = await api(`/api/runs/${encodeURIComponent(run.id)}/agents/${id}`); showError(box, null); }
  catch (e) { showError(box, e); return; }
  const body = $("agent-table").querySelector("tbody");
  if (a.columns) {
    body.replaceChildren(el("tr", {}, el("th", {}, "column"), el("th", {}, `value at step ${a.step}`), el("th", {}, "meaning")),
      ...a.columns.map((c) => el("tr", { "data-column": c.name }, el("td", {}, c.name), el("td", { class: "value" }, C.fmt(c.value)), el("td", {}, c.label || ""))));
  } else body.replaceChildren(el("tr", {}, el("td", {}, "the run has ended; the history recorded while it ran is below")));
  const prov = $("agent-provider");
  prov.replaceChildren();
  if (a.provider) {
    for (const d of a.provider.decisions) {
      prov.append(el("h3", {}, `LLM decision “${d.decision}” (${d.asking === "agents" ? "asked per agent" : "asked per archetype"})`));
      if (d.asking === "archetypes") {
        prov.append(el("div", {}, `archetype ${d.archetype}: ` + Object.entries(d.attributes).map(([k, v]) => `${k}=${v}`).join(", ")));
        prov.append(el("div", {}, "its last answer (probability): " + (d.last_answer === null ? "not asked yet" : C.fmt(d.last_answer))));
        if (d.last_prompt) {
          prov.append(el("div", { class: "hint" }, "the last prompt its archetype was asked"));
          prov.append(el("div", { class: "memory" }, d.last_prompt));
          prov.append(el("div", { class: "hint" }, "the answers it gave"));
          prov.append(el("div", { class: "memory" }, d.last_answers.join("\n")));
        }
      } else {
        prov.append(el("div", { class: "hint" }, `memory (last ${d.memory_turns} turns: the prompts' outcomes and its answers)`));
        prov.append(el("div", { class: "memory" }, d.memory.length ? d.memory.join("\n") : "(nothing yet)"));
      }
    }
  }
  const h = a.history;
  if (h && h.steps.length) {
    const series = h.columns.map((name, k) => ({ label: name, xs: h.steps, ys: h.values.map((r) => r[k]) }));
    C.lineChart($("agent-chart"), { title: `agent ${id}`, ylabel: "value", series, dates: run.series.dates ? (x) => dateOf(Math.round(x)) : null });
  }
  const ev = $("agent-events");
  ev.replaceChildren(...(a.events || []).slice(-100).map(eventLine));
}
function refreshAgentSoon() {
  if (inspected === null || agentTimer) return;
  agentTimer = setTimeout(() => { agentTimer = null; if (run && currentTab() === "agents") inspect(inspected); }, 1000);
}
async function sampleAgents(ev) {
  ev.preventDefault();
  const out = $("sample-result");
  const where = encodeURIComponent($("sample-where").value);
  const n = encodeURIComponent($("sample-n").value || "20");
  try {
    const r = await api(`/api/runs/${encodeURIComponent(run.id)}/agents?where=${where}&n=${n}`);
    out.replaceChildren(el("div", {}, `${r.matches.toLocaleString()} agents match at step ${r.step}; showing ${r.agents.length}:`),
      el("div", {}, ...r.agents.map((a) => el("a", { href: "#", class: "agent-link", onclick: (e) => { e.preventDefault(); inspect(a); } }, String(a), " "))));
  } catch (e) { out.replaceChildren(el("div", { class: "error" }, e.message)); }
}

// ---------------------------------------------------------------- LLM calls
let llmTimer = null, llmLast = 0, llmRows = [], llmBusy = false;
function startLlm() {
  llmLast = 0; llmRows = []; llmBusy = false;
  loadLlm();
  clearInterval(llmTimer);
  llmTimer = setInterval(loadLlm, 1000);
}
async function loadLlm() {
  // One request at a time: a slow answer must not let the next poll ask
  // for the same calls again.
  if (!run || llmBusy) return;
  llmBusy = true;
  let r;
  try { r = await api(`/api/runs/${encodeURIComponent(run.id)}/calls?after=${llmLast}`); } catch (e) { return; }
  finally { llmBusy = false; }
  const fresh = r.calls.filter((c) => c.seq > llmLast);
  llmLast = Math.max(llmLast, r.last);
  llmRows = fresh.reverse().concat(llmRows).slice(0, 300);
  const t = r.totals && r.totals.client ? r.totals.client : null;
  const tot = $("llm-totals");
  if (t) {
    const item = (k, v) => el("div", {}, el("b", {}, v), k);
    tot.replaceChildren(item("calls", t.calls), item("cache hits", t.cache_hits), item("tokens in", t.tokens_in),
      item("tokens out", t.tokens_out), item("retries", t.retries), item("failures", t.failures),
      item("seconds waited", t.wait_seconds.toFixed(1)), item("backend", r.totals.backend || ""), item("model", r.totals.model || ""));
  } else tot.replaceChildren(el("div", {}, r.note || "This run's decisions come from its model's rule or a policy: no model calls."));
  $("llm-table").querySelector("tbody").replaceChildren(...llmRows.map((c) => el("tr", {},
    el("td", {}, c.seq), el("td", {}, c.backend + (c.prompts > 1 ? ` (×${c.prompts})` : "")), el("td", {}, c.latency_ms.toFixed(1)),
    el("td", {}, c.tokens_in), el("td", {}, c.tokens_out), el("td", {}, c.cache_hit ? "hit" : ""), el("td", {}, c.retries || ""),
    el("td", { class: "text" }, c.prompt), el("td", { class: "text" + (c.error ? " error" : "") }, c.error || c.answer || ""))));
  if (!run.live || !["building", "running", "paused"].includes(run.info.status)) { clearInterval(llmTimer); llmTimer = null; }
}

// ---------------------------------------------------------------- space
let spaceTimer = null;
async function refreshSpace() {
  clearTimeout(spaceTimer); spaceTimer = null;
  if (!run || currentTab() !== "space") return;
  const info = $("space-info");
  if (!run.live) { info.textContent = "positions are shown for live runs (started from this page)"; return; }
  try {
    const buf = await api(`/api/runs/${encodeURIComponent(run.id)}/points?max=${$("space-max").value || 100000}`);
    const r = C.pointsView($("space-canvas"), buf);
    info.textContent = `step ${run.series.steps[run.series.steps.length - 1] || 0}: ${r.shown.toLocaleString()} of ${r.total.toLocaleString()} agents drawn, coloured by heading`;
  } catch (e) { info.textContent = e.message; return; }
  if (["running", "building"].includes(run.info.status)) spaceTimer = setTimeout(refreshSpace, 200);
}

// ---------------------------------------------------------------- areas
function areaGroups() {
  const groups = {};
  run.series.metrics.forEach((m, i) => {
    const g = /^(.*)_([A-Z]{2,3})$/.exec(m);
    if (g) (groups[g[1]] = groups[g[1]] || []).push({ code: g[2], index: i });
  });
  return Object.fromEntries(Object.entries(groups).filter(([, v]) => v.length >= 2));
}
function fillAreas() {
  const sel = $("areas-prefix");
  const keep = sel.value;
  const names = Object.keys(areaGroups());
  sel.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  if (names.includes(keep)) sel.value = keep;
  if (!names.length) sel.replaceChildren(el("option", { value: "" }, "(this model has no per-area metrics)"));
}
function drawAreas() {
  if (!run || currentTab() !== "areas") return;
  const groups = areaGroups();
  const g = groups[$("areas-prefix").value];
  if (!g) { C.barChart($("areas-chart"), { title: "no per-area metrics", labels: [], values: [] }); return; }
  const s = run.series;
  const flow = (run.kinds[g[0].index] || (/^new_/.test($("areas-prefix").value) ? "flow" : "stock")) === "flow";
  const values = g.map((a) => {
    const v = s.values[a.index];
    if (!v.length) return 0;
    return flow ? v.reduce((x, y) => x + (isFinite(y) ? y : 0), 0) : v[v.length - 1];
  });
  const last = s.steps.length ? s.steps[s.steps.length - 1] : 0;
  C.barChart($("areas-chart"), { title: `${$("areas-prefix").value} ${flow ? "summed to" : "at"} step ${last}`, ylabel: $("areas-prefix").value,
    labels: g.map((a) => a.code), values });
}

// ---------------------------------------------------------------- transcript
function eventLine(e) {
  const who = e.agent !== undefined ? `agent ${e.agent}` : e.donor !== undefined ? `agent ${e.donor} → ${e.recipient}` : "";
  const text = e.text !== undefined ? e.text : JSON.stringify(Object.fromEntries(Object.entries(e).filter(([k]) => !["step", "agent", "kind"].includes(k))));
  return el("div", { class: "event" }, `step ${e.step}${dateOf(e.step) ? " (" + dateOf(e.step) + ")" : ""} `,
    el("span", { class: "who" }, who), ` ${e.kind || ""}: ${text}`);
}
async function loadTranscript(ev) {
  if (ev) ev.preventDefault();
  const a = $("transcript-agent").value;
  const box = $("transcript");
  try {
    const list = await api(`/api/runs/${encodeURIComponent(run.id)}/transcript${a !== "" ? "?agent=" + encodeURIComponent(a) : ""}`);
    box.replaceChildren(...(list.length ? list.map(eventLine) : [el("div", { class: "hint" }, "no events: this model's agents say nothing (games with LLM players write a transcript)")]));
  } catch (e) { box.replaceChildren(el("div", { class: "error" }, e.message)); }
}

// ---------------------------------------------------------------- routing
function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  if (parts[0] === "run" && parts[1]) {
    clearInterval(runsTimer); runsTimer = null;
    openRun(decodeURIComponent(parts[1]), parts[2] || "metrics");
  } else {
    closeRun();
    $("run-view").hidden = true; $("runs-view").hidden = false;
    loadRuns();
    drawCompare(false);
    clearInterval(runsTimer);
    runsTimer = setInterval(loadRuns, 3000);
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("resize", () => scheduleDraw());
$("start-form").addEventListener("submit", startRun);
$("compare-metric").addEventListener("change", () => drawCompare(false));
$("btn-pause").addEventListener("click", () => control("pause"));
$("btn-resume").addEventListener("click", () => control("resume"));
$("btn-step").addEventListener("click", () => control("step"));
$("btn-stop").addEventListener("click", () => control("stop"));
$("agent-form").addEventListener("submit", (e) => { e.preventDefault(); if ($("agent-id").value !== "") inspect(Number($("agent-id").value)); });
$("sample-form").addEventListener("submit", sampleAgents);
$("transcript-form").addEventListener("submit", loadTranscript);
$("areas-prefix").addEventListener("change", drawAreas);
for (const a of document.querySelectorAll(".tabs a")) a.addEventListener("click", () => {
  if (run) location.hash = "#/run/" + encodeURIComponent(run.id) + "/" + a.dataset.tab;
});
loadScenarios();
route();
