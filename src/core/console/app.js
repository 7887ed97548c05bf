// Sedge's web console: plain JavaScript, served by sedged itself. It reads
// the core through /api/ (the same commands as sedgectl) and watches topics
// through a WebSocket at /console/ws.
"use strict";

const $ = (id) => document.getElementById(id);
let csrf = "";
let current = "status";
let timer = null;
const rates = []; // {t, in, out} samples for the chart
let lastCounts = null;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c);
    else td.textContent = c === undefined || c === null ? "" : String(c);
    tr.appendChild(td);
  }
  return tr;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body),
  };
  const r = await fetch("/api/" + path, opts);
  let data = {};
  try { data = await r.json(); } catch (e) { data = { error: "HTTP " + r.status }; }
  if (r.status === 401) showLogin();
  if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
  return data;
}

function showLogin() {
  $("login").classList.remove("hidden");
  for (const p of document.querySelectorAll(".page")) p.classList.remove("active");
  if (timer) clearInterval(timer);
  timer = null;
}

function setResult(id, ok, text) {
  const e = $(id);
  e.textContent = text;
  e.className = "result " + (ok ? "ok" : "error");
}

function ago(t) {
  if (!t) return "never";
  const s = Math.max(0, Math.round(Date.now() / 1000 - t));
  return s < 2 ? "now" : s + " s ago";
}

function card(k, v) {
  const d = el("div", null, "card");
  d.appendChild(el("div", k, "k"));
  d.appendChild(el("div", v, "v"));
  return d;
}

// ---- status, with the messages/s chart ----
async function loadStatus() {
  const s = await api("status");
  $("core-name").textContent = s.thing_name || "";
  const now = Date.now() / 1000;
  if (lastCounts) {
    const dt = now - lastCounts.t;
    if (dt > 0) {
      rates.push({ t: now, in: (s.messages_in - lastCounts.in) / dt,
                   out: (s.messages_out - lastCounts.out) / dt });
      while (rates.length > 120) rates.shift();
    }
  }
  lastCounts = { t: now, in: s.messages_in, out: s.messages_out };
  const last = rates.length ? rates[rates.length - 1] : { in: 0, out: 0 };
  fill($("status-cards"), [
    card("Uptime", s.uptime_s + " s"),
    card("Connections", s.connections),
    card("Sessions", s.sessions),
    card("Subscriptions", s.subscriptions),
    card("Messages in/s", last.in.toFixed(1)),
    card("Messages out/s", last.out.toFixed(1)),
    card("Messages in", s.messages_in),
    card("Messages out", s.messages_out),
    card("Dropped", s.messages_dropped),
    card("Queued", s.messages_queued),
    card("Group", s.group ? s.group.name + " v" + s.group.version : "none"),
    card("Store", (s.store_bytes / 1024).toFixed(0) + " KB"),
  ]);
  drawChart();
}

function drawChart() {
  const c = $("rate-chart");
  const g = c.getContext("2d");
  const w = c.width, h = c.height;
  g.clearRect(0, 0, w, h);
  const max = Math.max(1, ...rates.map((r) => Math.max(r.in, r.out)));
  g.fillStyle = "#667085";
  g.font = "11px sans-serif";
  g.fillText(max.toFixed(0) + "/s", 4, 12);
  const line = (key, color) => {
    g.strokeStyle = color;
    g.lineWidth = 2;
    g.beginPath();
    rates.forEach((r, i) => {
      const x = w - (rates.length - 1 - i) * (w / 120);
      const y = h - 4 - (r[key] / max) * (h - 20);
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  };
  line("in", "#1f6feb");
  line("out", "#e36209");
}

// ---- things ----
async function loadThings() {
  const d = await api("things");
  fill($("things-body"), d.things.map((t) => row([
    t.name,
    el("span", t.connected ? "connected" : "offline", t.connected ? "state-on" : "state-off"),
    t.in_group ? (t.revoked ? "revoked" : "yes") : (d.group_deployed ? "no" : "(no group)"),
    t.clients.map((c) => c.client_id + " (" + c.transport + ", MQTT " + c.mqtt + ", " + c.peer + ")").join("; "),
    t.connected ? "now" : ago(t.last_seen),
  ])));
}

// ---- group and routes ----
async function loadGroup() {
  const g = await api("group");
  $("group-summary").textContent = g.document
    ? "Group " + g.document.group + ", version " + g.version
    : "No group is deployed: every authenticated client may publish and subscribe.";
  fill($("routes-body"), (g.routes || []).map((r) => row([r.route, r.messages])));
  $("group-doc").textContent = g.document ? JSON.stringify(g.document, null, 2) : "";
}

// ---- shadows ----
async function loadShadow() {
  const thing = $("shadow-thing").value.trim();
  const name = $("shadow-name").value.trim();
  if (!thing) return;
  try {
    const list = await api("shadows?thing=" + encodeURIComponent(thing));
    $("shadow-list").textContent = "Named shadows: " + ((list.results || []).join(", ") || "none");
  } catch (e) { $("shadow-list").textContent = ""; }
  try {
    const s = await api("shadow?thing=" + encodeURIComponent(thing) + (name ? "&name=" + encodeURIComponent(name) : ""));
    $("shadow-doc").textContent = JSON.stringify(s.document, null, 2);
    const desired = s.document && s.document.state && s.document.state.desired;
    $("shadow-desired").value = JSON.stringify(desired || {}, null, 2);
  } catch (e) {
    $("shadow-doc").textContent = e.message;
  }
}

async function saveShadow() {
  const thing = $("shadow-thing").value.trim();
  const name = $("shadow-name").value.trim();
  let desired;
  try { desired = JSON.parse($("shadow-desired").value); } catch (e) {
    setResult("shadow-result", false, "not JSON: " + e.message);
    return;
  }
  try {
    const r = await api("shadow", { thing, name, desired });
    setResult("shadow-result", true, "updated to version " + (r.document && r.document.version));
    await loadShadow();
  } catch (e) { setResult("shadow-result", false, e.message); }
}

// ---- functions ----
async function showLog(name) {
  $("log-name").textContent = name;
  try {
    const r = await api("logs?function=" + encodeURIComponent(name));
    $("log-tail").textContent = r.tail;
  } catch (e) { $("log-tail").textContent = e.message; }
}

async function loadFunctions() {
  const d = await api("functions");
  const fns = d.functions || [];
  fill($("functions-body"), fns.map((f) => {
    const b = el("button", "log", "small secondary");
    b.addEventListener("click", () => showLog(f.name));
    return row([f.name, f.state, (f.instances || []).length, f.invocations, f.errors, f.queue, b]);
  }));
  const sel = $("invoke-function");
  const chosen = sel.value;
  sel.replaceChildren(...fns.map((f) => el("option", f.name)));
  if (chosen) sel.value = chosen;
}

async function invoke() {
  const fn = $("invoke-function").value;
  const text = $("invoke-payload").value;
  let request;
  try { request = { function: fn, payload: JSON.parse(text) }; } catch (e) {
    request = { function: fn, payload_text: text }; // not JSON: sent as it is
  }
  $("invoke-result").textContent = "...";
  try {
    const r = await api("invoke", request);
    $("invoke-result").textContent = r.result !== undefined ? r.result : JSON.stringify(r);
  } catch (e) { $("invoke-result").textContent = "error: " + e.message; }
}

// ---- cloud ----
async function loadCloud() {
  try {
    const s = await api("spool");
    fill($("cloud-cards"), [
      card("Link", s.state), card("Queued", s.queued), card("Bytes", s.bytes),
      card("Oldest", s.oldest_age_s + " s"), card("Sent", s.sent), card("Dropped", s.dropped),
    ]);
    $("cloud-detail").textContent = JSON.stringify(s, null, 2);
  } catch (e) {
    fill($("cloud-cards"), []);
    $("cloud-detail").textContent = e.message;
  }
}

// ---- deployments ----
async function loadDeployments() {
  const d = await api("deployments");
  fill($("deployments-body"), (d.deployments || []).slice().reverse().map((x) => {
    let action = "";
    if (x.version === d.active) action = el("span", "active", "state-on");
    else {
      action = el("button", "roll back to this", "small");
      action.dataset.version = x.version;
      action.addEventListener("click", () => rollback(x.version));
    }
    return row([x.version, x.group, x.status, x.created_at ? new Date(x.created_at * 1000).toLocaleString() : "",
                (x.checksum || "").slice(0, 12), action]);
  }));
}

async function rollback(version) {
  try {
    const r = await api("rollback", { version });
    setResult("deploy-result", true, r.message || ("rolled back to version " + version));
  } catch (e) { setResult("deploy-result", false, e.message); }
  await loadDeployments();
}

// ---- live topics ----
let ws = null;
function watch() {
  const filter = $("watch-filter").value.trim() || "#";
  if (ws) ws.close();
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/console/ws", "sedge-console");
  $("watch-state").textContent = "connecting...";
  ws.onopen = () => ws.send(JSON.stringify({ subscribe: filter }));
  ws.onclose = () => { $("watch-state").textContent = "closed"; };
  ws.onmessage = (ev) => {
    for (const line of String(ev.data).split("\n")) {
      if (!line) continue;
      const m = JSON.parse(line);
      if (m.subscribed !== undefined) {
        setResult("watch-state", m.ok, m.ok ? "watching " + m.subscribed : "invalid filter");
        continue;
      }
      if (!m.topic) continue;
      const body = $("messages-body");
      body.insertBefore(row([new Date(m.t * 1000).toLocaleTimeString(), m.topic, m.source, m.qos,
                             m.payload !== undefined ? m.payload : "(binary) " + m.payload_b64]), body.firstChild);
      while (body.children.length > 200) body.removeChild(body.lastChild);
    }
  };
}

async function publish() {
  try {
    await api("publish", { topic: $("pub-topic").value.trim(), payload: $("pub-payload").value });
    setResult("pub-result", true, "published");
  } catch (e) { setResult("pub-result", false, e.message); }
}

// ---- pages ----
const loaders = {
  status: loadStatus, things: loadThings, group: loadGroup, shadows: async () => {},
  functions: loadFunctions, cloud: loadCloud, deployments: loadDeployments, topics: async () => {},
};

async function refresh() {
  try { await loaders[current](); } catch (e) { /* shown on the next try */ }
  if (current !== "status") { try { await loadStatus(); } catch (e) { /* keeps the chart going */ } }
}

function show(page) {
  if (!loaders[page]) page = "status";
  current = page;
  for (const p of document.querySelectorAll(".page")) p.classList.toggle("active", p.id === page);
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.getAttribute("href") === "#" + page);
  refresh();
}

async function start() {
  try {
    const s = await api("session");
    csrf = s.csrf;
    $("who").textContent = s.who === "token" ? "logged in" : "admin " + s.who;
  } catch (e) {
    showLogin();
    return;
  }
  $("shadow-form").addEventListener("submit", (e) => { e.preventDefault(); loadShadow(); });
  $("shadow-save").addEventListener("click", saveShadow);
  $("invoke-button").addEventListener("click", invoke);
  $("watch-button").addEventListener("click", watch);
  $("pub-button").addEventListener("click", publish);
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
  show(location.hash.slice(1) || "status");
  timer = setInterval(refresh, 2000);
}

document.addEventListener("DOMContentLoaded", start);
