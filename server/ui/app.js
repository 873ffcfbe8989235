// logpulse dashboard: token, API calls, shared filters and view routing.
// Every value from the server is put into the page as text (textContent or
// attribute values), never parsed as HTML.
"use strict";

const TOKEN_KEY = "logpulse-token";
const VIEWS = ["logs", "volume", "errors", "live", "alerts"];

const App = {
  token: "",
  view: "logs",
  renderers: {},
  leave: {},
  filters: { range: "60", start: "", end: "", service: "", severity: "", contains: "" },
};

function $(id) {
  return document.getElementById(id);
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function setStatus(text, isError) {
  const s = $("status");
  s.textContent = text || "";
  s.classList.toggle("error", !!isError);
}

// The token: from the URL fragment (#token=...) once, then sessionStorage.
function loadToken() {
  const m = /^#token=([^&]*)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search + "#logs");
  }
  App.token = sessionStorage.getItem(TOKEN_KEY) || "";
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, params, init) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== "" && v !== null && v !== undefined) q.set(k, String(v));
  }
  const url = path + (q.toString() ? "?" + q : "");
  const headers = Object.assign({ Authorization: "Bearer " + App.token }, (init && init.headers) || {});
  const resp = await fetch(url, Object.assign({}, init || {}, { headers, cache: "no-store" }));
  let body = null;
  try {
    body = await resp.json();
  } catch (_) {
    body = null;
  }
  if (!resp.ok) {
    const msg = body && typeof body.error === "string" ? body.error : resp.statusText;
    throw new ApiError(resp.status, msg);
  }
  return body;
}

function pipe(name, params) {
  return api(`/v0/pipes/${name}.json`, params);
}

// "YYYY-MM-DD HH:MM:SS" (UTC) of a Unix second.
function fmtTime(sec) {
  return new Date(sec * 1000).toISOString().slice(0, 19).replace("T", " ");
}

function parseTime(s) {
  return Math.floor(Date.parse(s.replace(" ", "T") + "Z") / 1000);
}

// [start, end) in Unix seconds for the filters.
function range() {
  const f = App.filters;
  if (f.range === "custom" && f.start && f.end) {
    return [parseTime(f.start.replace("T", " ") + (f.start.length === 16 ? ":00" : "")),
      parseTime(f.end.replace("T", " ") + (f.end.length === 16 ? ":00" : ""))];
  }
  const minutes = f.range === "custom" ? 60 : Number(f.range);
  const end = Math.floor(Date.now() / 60000) * 60 + 60;
  return [end - minutes * 60, end];
}

// The filters as pipe parameters.
function filterParams(withText) {
  const [start, end] = range();
  const p = {
    start_time: fmtTime(start),
    end_time: fmtTime(end),
    service: App.filters.service,
    severity: App.filters.severity,
  };
  if (withText) p.contains = App.filters.contains;
  return p;
}

function readFilters() {
  const f = App.filters;
  f.range = $("f-range").value;
  f.start = $("f-start").value;
  f.end = $("f-end").value;
  f.service = $("f-service").value.trim();
  f.severity = $("f-severity").value.trim().toUpperCase();
  f.contains = $("f-contains").value;
  showCustom();
}

function writeFilters() {
  const f = App.filters;
  $("f-range").value = f.range;
  $("f-start").value = f.start;
  $("f-end").value = f.end;
  $("f-service").value = f.service;
  $("f-severity").value = f.severity;
  $("f-contains").value = f.contains;
  showCustom();
}

function showCustom() {
  for (const l of document.querySelectorAll("#filters .custom")) l.hidden = App.filters.range !== "custom";
}

// Narrows the filters to [start, end) and shows the logs (a bar's click).
function focusRange(start, end, service, severity) {
  const iso = (s) => fmtTime(s).replace(" ", "T").slice(0, 16);
  Object.assign(App.filters, { range: "custom", start: iso(start), end: iso(end) });
  if (service !== undefined) App.filters.service = service;
  if (severity !== undefined) App.filters.severity = severity;
  writeFilters();
  location.hash = "#logs";
}

function report(err) {
  if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
    setStatus(`Token refused (${err.status}): ${err.message}`, true);
  } else {
    setStatus(`Request failed: ${err.message}`, true);
  }
}

async function render() {
  const view = App.view;
  for (const s of document.querySelectorAll("main section")) s.hidden = s.dataset.view !== view;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (!App.token) {
    setStatus("Enter a token to see the logs (or open the page with #token=...).", true);
    return;
  }
  setStatus("Loading…");
  try {
    await App.renderers[view]();
    if ($("status").textContent === "Loading…") setStatus("");
  } catch (err) {
    report(err);
  }
}

function route() {
  const v = location.hash.replace(/^#/, "");
  const next = VIEWS.includes(v) ? v : "logs";
  if (App.view !== next && App.leave[App.view]) App.leave[App.view]();
  App.view = next;
  render();
}

async function loadNames() {
  if (!App.token) return;
  try {
    const [start, end] = range();
    const d = await pipe("error_distribution", { start_time: fmtTime(start - 7 * 86400), end_time: fmtTime(end), limit: 10000 });
    const services = new Set(), severities = new Set(["ERROR", "WARN", "INFO", "DEBUG"]);
    for (const r of d.data) {
      services.add(r.service);
      severities.add(r.severity);
    }
    fillList($("services"), services);
    fillList($("severities"), severities);
  } catch (_) {
    // The lists are a convenience; the views report errors.
  }
}

function fillList(list, values) {
  Charts.clear(list);
  for (const v of [...values].sort()) {
    const o = document.createElement("option");
    o.value = v;
    list.appendChild(o);
  }
}

function start() {
  loadToken();
  $("token").value = App.token ? "********" : "";
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const v = $("token").value.trim();
    if (v && v !== "********") {
      App.token = v;
      sessionStorage.setItem(TOKEN_KEY, v);
      $("token").value = "********";
      loadNames();
      render();
    }
  });
  $("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    App.token = "";
    $("token").value = "";
    if (App.leave[App.view]) App.leave[App.view]();
    render();
  });
  $("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    readFilters();
    App.page = 0;
    render();
  });
  $("f-range").addEventListener("change", () => readFilters());
  window.addEventListener("hashchange", route);
  writeFilters();
  loadNames();
  route();
}

window.App = App;
window.addEventListener("DOMContentLoaded", () => setTimeout(start, 0));
