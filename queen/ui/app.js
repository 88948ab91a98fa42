// tge-swarm web view: plain JavaScript, no build step, served by the queen.
//
// The API key lives in this tab's sessionStorage only (never localStorage, never a cookie),
// and every request sends it as X-API-Key. The live stream is read with fetch rather than
// EventSource, which cannot send headers; it resumes with Last-Event-ID after a drop.
// Everything shown is set as text (textContent), never as HTML.
"use strict";

const KEY_STORAGE = "tge-swarm-api-key";
const API = "/api/v1";
const state = {
  events: new Map(), // id -> event, as listed
  selected: null, // id of the event in the detail panel
  lastEventId: null, // the stream's last id
  streamAbort: null,
  filters: new URLSearchParams(),
  streamGeneration: 0,
};

const $ = (selector) => document.querySelector(selector);

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

function headers(extra) {
  const out = Object.assign({}, extra || {});
  const key = apiKey();
  if (key) out["X-API-Key"] = key;
  return out;
}

function say(text, isError) {
  const box = $("#message");
  box.textContent = text;
  box.classList.toggle("error", Boolean(isError));
  box.hidden = !text;
}

// Sends a request with the key; the answer's text, or an error naming the problem the API
// described.
async function request(method, path, body) {
  const init = { method, headers: headers(body ? { "Content-Type": "application/json" } : {}) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(API + path, init);
  const text = await response.text();
  if (!response.ok) {
    let detail = text || response.statusText;
    try {
      detail = JSON.parse(text).detail || detail;
    } catch (_) {
      // Not a problem document: its text says it.
    }
    const error = new Error(`${method} ${path}: ${response.status} ${detail}`);
    error.status = response.status;
    throw error;
  }
  return text;
}

async function api(method, path, body) {
  const text = await request(method, path, body);
  return text ? JSON.parse(text) : null;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function badge(text) {
  return el("span", text, "badge " + String(text).replace(/[^a-z_]/g, ""));
}

function when(iso) {
  if (!iso) return "";
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? iso : at.toLocaleString();
}

function safeLink(url, text) {
  // Only http(s) links: a source URL is data from the web.
  let parsed = null;
  try {
    parsed = new URL(url);
  } catch (_) {
    parsed = null;
  }
  if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) return el("span", text || url);
  const a = el("a", text || url);
  a.href = parsed.href;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}

function dateText(event) {
  if (!event.event_date) return "";
  return event.date_precision ? `${event.event_date} (${event.date_precision})` : event.event_date;
}

// ---- events list ----

function eventRow(event) {
  const row = document.createElement("tr");
  row.dataset.id = String(event.id);
  row.append(
    el("td", when(event.first_seen)),
    el("td", event.project || "—"),
    el("td", event.token ? "$" + event.token : ""),
    el("td", (event.kind || "").replace("_", " ")),
    el("td", dateText(event)),
    el("td", Number(event.score).toFixed(2)),
  );
  const status = el("td");
  status.className = "status-cell";
  status.append(badge(event.status));
  row.append(status, el("td", event.source_count));
  row.addEventListener("click", () => select(event.id));
  if (state.selected === event.id) row.classList.add("selected");
  return row;
}

function matchesFilters(event) {
  // The stream applies the filters; a status or kind change seen here may take an event out.
  const status = state.filters.get("status");
  const kind = state.filters.get("kind");
  return (!status || event.status === status) && (!kind || event.kind === kind);
}

function upsert(event, fresh) {
  state.events.set(event.id, event);
  const body = $("#events tbody");
  const old = body.querySelector(`tr[data-id="${event.id}"]`);
  if (!matchesFilters(event)) {
    if (old) old.remove();
    return;
  }
  const row = eventRow(event);
  if (fresh) row.classList.add("fresh");
  if (old) old.replaceWith(row);
  else body.prepend(row);
  if (state.selected === event.id) showDetail(event);
}

async function loadEvents() {
  const params = new URLSearchParams(state.filters);
  params.set("page_size", "100");
  const page = await api("GET", "/events?" + params.toString());
  const body = $("#events tbody");
  body.replaceChildren();
  state.events.clear();
  for (const event of page.events.slice().reverse()) upsert(event, false);
}

// ---- the live stream ----

function setLive(on, text) {
  const live = $("#live");
  live.className = "status " + (on ? "on" : "off");
  live.textContent = text;
}

function handleStreamBlock(block) {
  let id = null;
  let type = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") id = value;
    else if (field === "event") type = value;
    else if (field === "data") data.push(value);
  }
  if (id) state.lastEventId = id;
  if (type === "event.created" || type === "event.updated") {
    upsert(JSON.parse(data.join("\n")), true);
  } else if (type === "dropped") {
    const reason = data.length ? JSON.parse(data.join("\n")).reason : "dropped";
    say("The live stream was dropped: " + reason + ". Reloading.", true);
    state.lastEventId = null;
    loadEvents().catch((err) => say(err.message, true));
  }
}

async function openStream() {
  if (state.streamAbort) state.streamAbort.abort();
  const generation = ++state.streamGeneration;
  const abort = new AbortController();
  state.streamAbort = abort;
  const params = new URLSearchParams(state.filters);
  const extra = { Accept: "text/event-stream" };
  if (state.lastEventId) extra["Last-Event-ID"] = state.lastEventId;
  try {
    const response = await fetch(API + "/events/stream?" + params.toString(), {
      headers: headers(extra),
      signal: abort.signal,
      cache: "no-store",
    });
    if (!response.ok || !response.body) throw new Error(`stream: ${response.status}`);
    setLive(true, "live");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        handleStreamBlock(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  } catch (err) {
    if (abort.signal.aborted) return;
    console.warn("stream", err);
  }
  if (generation !== state.streamGeneration) return;
  setLive(false, "reconnecting");
  setTimeout(() => {
    if (generation === state.streamGeneration) openStream();
  }, 2000);
}

// ---- one event ----

async function select(id) {
  state.selected = id;
  for (const row of document.querySelectorAll("#events tbody tr")) {
    row.classList.toggle("selected", row.dataset.id === String(id));
  }
  try {
    const event = await api("GET", `/events/${id}`);
    state.events.set(id, event);
    showDetail(event);
    await showHistory(id);
  } catch (err) {
    say(err.message, true);
  }
}

function showDetail(event) {
  $("#detail").hidden = false;
  $("#detail-title").textContent = `${event.project || "Unnamed project"}${event.token ? " ($" + event.token + ")" : ""}`;
  const facts = $("#detail-facts");
  facts.replaceChildren();
  const add = (name, value) => {
    if (value === undefined || value === null || value === "") return;
    facts.append(el("dt", name), el("dd", value));
  };
  add("event", event.id);
  add("kind", (event.kind || "").replace("_", " "));
  add("venues", (event.venues || []).join(", "));
  add("date", dateText(event));
  add("score", Number(event.score).toFixed(3));
  add("status", event.status);
  add("set by", event.status_by);
  add("set at", when(event.status_changed_at));
  add("revision", event.revision);
  add("first seen", when(event.first_seen));
  add("last seen", when(event.last_seen));
  add("sources", event.source_count);
  const evidence = $("#detail-evidence");
  evidence.replaceChildren();
  for (const item of event.evidence || []) {
    const li = el("li");
    li.append(el("span", item.snippet), el("span", ` ${item.feature} (${Number(item.weight).toFixed(2)})`, "muted"));
    evidence.append(li);
  }
  const sources = $("#detail-sources");
  sources.replaceChildren();
  for (const source of event.sources || []) {
    const li = el("li");
    li.append(safeLink(source.url, source.title || source.url), el("span", ` — ${source.source_name}, ${when(source.published_at || source.seen_at)}`, "muted"));
    sources.append(li);
  }
}

async function showHistory(id) {
  const history = await api("GET", `/events/${id}/history`);
  const list = $("#detail-history");
  list.replaceChildren();
  if (!history.changes.length) list.append(el("li", "no changes yet", "muted"));
  for (const change of history.changes) {
    const parts = [when(change.at), change.actor];
    if (change.status_to) parts.push(`${change.status_from} → ${change.status_to}`);
    const li = el("li", parts.join(" · "));
    if (change.note) li.append(el("div", change.note));
    list.append(li);
  }
}

// Applies an analyst's change to the selected event; whether it was applied.
async function update(body) {
  const id = state.selected;
  if (id === null) return false;
  try {
    const event = await api("PATCH", `/events/${id}`, body);
    upsert(event, false);
    showDetail(event);
    await showHistory(id);
    say("");
    return true;
  } catch (err) {
    say(err.status === 401 || err.status === 403 ? "A key with the write scope is needed: " + err.message : err.message, true);
    return false;
  }
}

async function falsePositive() {
  const id = state.selected;
  if (id === null) return;
  try {
    const note = $("#note").value.trim();
    await api("POST", `/events/${id}/feedback`, { label: "false_positive", note: note || null });
    if (await update({ status: "dismissed", note: note || "false positive" })) $("#note").value = "";
  } catch (err) {
    say(err.message, true);
  }
}

// ---- calendar, sources, agents ----

async function loadCalendar() {
  // The 5,000 newest events dated to the day, as calendar.ics reads them (JSON Lines).
  const lines = await request("GET", "/events/export?format=jsonl&date_precision=day&limit=5000");
  const events = lines
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line));
  const today = new Date().toISOString().slice(0, 10);
  const upcoming = events.filter((event) => event.event_day && event.event_day >= today);
  upcoming.sort((a, b) => (a.event_day < b.event_day ? -1 : a.event_day > b.event_day ? 1 : 0));
  const body = $("#calendar tbody");
  body.replaceChildren();
  if (!upcoming.length) {
    const row = document.createElement("tr");
    const cell = el("td", "No upcoming event dated to the day.", "muted");
    cell.colSpan = 6;
    row.append(cell);
    body.append(row);
  }
  for (const event of upcoming) {
    const row = document.createElement("tr");
    const status = el("td");
    status.append(badge(event.status));
    row.append(el("td", event.event_day), el("td", event.project || "—"), el("td", event.token ? "$" + event.token : ""), el("td", (event.kind || "").replace("_", " ")), status, el("td", event.event_date));
    body.append(row);
  }
}

async function loadSources() {
  const list = await api("GET", "/sources");
  const body = $("#sources tbody");
  body.replaceChildren();
  for (const source of list.sources) {
    const row = document.createElement("tr");
    const status = el("td");
    status.append(badge(source.last_status || "never fetched"));
    const health = el("td");
    if (source.down_since) {
      health.append(badge("down"), el("div", `since ${when(source.down_since)}: ${source.down_reason || ""}`, "muted"));
    } else {
      health.append(badge("ok"));
    }
    row.append(el("td", source.name), el("td", source.kind), el("td", source.enabled ? "yes" : "no"), health, status, el("td", source.consecutive_failures), el("td", when(source.last_fetch_at)), el("td", source.last_error || ""));
    body.append(row);
  }
}

async function loadAgents() {
  const list = await api("GET", "/agents");
  const body = $("#agents tbody");
  body.replaceChildren();
  for (const agent of list.agents) {
    const row = document.createElement("tr");
    const status = el("td");
    status.append(badge(agent.status));
    row.append(el("td", agent.id), el("td", agent.kind), status, el("td", agent.restarts), el("td", when(agent.last_heartbeat)));
    body.append(row);
  }
}

const loaders = { events: loadEvents, calendar: loadCalendar, sources: loadSources, agents: loadAgents };

function showTab(name) {
  for (const button of document.querySelectorAll("#tabs button")) {
    button.classList.toggle("active", button.dataset.tab === name);
  }
  for (const section of document.querySelectorAll("main .tab")) {
    section.hidden = section.id !== "tab-" + name;
  }
  loaders[name]().catch((err) => say(err.message, true));
}

// ---- wiring ----

function readFilters() {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData($("#filters"))) {
    if (String(value).trim()) params.set(name, String(value).trim());
  }
  return params;
}

async function start() {
  say("");
  state.filters = readFilters();
  state.lastEventId = null;
  try {
    await loadEvents();
  } catch (err) {
    say(err.status === 401 ? "This swarm needs an API key to read: enter one above." : err.message, true);
  }
  openStream();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#api-key").value = apiKey();
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("#api-key").value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
    start();
  });
  $("#key-forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    $("#api-key").value = "";
    say("The key is forgotten.");
  });
  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    start();
  });
  for (const button of document.querySelectorAll("#tabs button")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }
  for (const button of document.querySelectorAll(".actions button[data-status]")) {
    button.addEventListener("click", () => {
      const note = $("#note").value.trim();
      update(note ? { status: button.dataset.status, note } : { status: button.dataset.status }).then((applied) => {
        if (applied) $("#note").value = "";
      });
    });
  }
  $("#false-positive").addEventListener("click", falsePositive);
  $("#note-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const note = $("#note").value.trim();
    if (!note) return;
    update({ note }).then((applied) => {
      if (applied) $("#note").value = "";
    });
  });
  start();
});
