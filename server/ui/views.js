// The five views. Each renderer fetches what it shows and builds the DOM
// with text nodes only.
"use strict";

const PAGE = 50;
const LIVE_MAX_ROWS = 500;
const SEVERITY_ORDER = ["CRITICAL", "FATAL", "ERROR", "WARN", "WARNING", "INFO", "DEBUG", "TRACE"];

function cell(tr, text, cls) {
  const td = el("td", text, cls);
  tr.appendChild(td);
  return td;
}

function tbody(id) {
  const b = document.querySelector(`#${id} tbody`);
  Charts.clear(b);
  return b;
}

// Fills a table's body: one row per item, one cell per [value of item, class].
function fillTable(id, items, columns, empty) {
  const body = tbody(id);
  for (const item of items) {
    const tr = el("tr");
    for (const [value, cls] of columns) cell(tr, value(item), cls);
    body.appendChild(tr);
  }
  if (!items.length) emptyRow(body, columns.length, empty);
}

function emptyRow(body, cols, text) {
  const tr = el("tr");
  const td = cell(tr, text, "hint");
  td.colSpan = cols;
  body.appendChild(tr);
}

// ---- Logs -----------------------------------------------------------------

App.page = 0;

function metadataText(m) {
  if (!m) return "";
  try {
    return JSON.stringify(JSON.parse(m), null, 2);
  } catch (_) {
    return m;
  }
}

function logRow(body, r) {
  const tr = el("tr");
  const btn = el("button", "+");
  btn.type = "button";
  btn.setAttribute("aria-expanded", "false");
  btn.setAttribute("aria-label", "Show details");
  const td = cell(tr, null);
  td.appendChild(btn);
  cell(tr, r.timestamp, "time");
  cell(tr, r.service);
  cell(tr, r.severity, "sev");
  cell(tr, null, "msg").appendChild(el("div", r.message));
  cell(tr, r.server_id);
  cell(tr, r.error_code);
  body.appendChild(tr);
  let detail = null;
  btn.addEventListener("click", () => {
    if (detail) {
      detail.remove();
      detail = null;
      btn.textContent = "+";
      btn.setAttribute("aria-expanded", "false");
      return;
    }
    detail = el("tr", null, "detail");
    const d = cell(detail, null);
    d.colSpan = 7;
    const dl = el("dl", null, "fields");
    for (const k of ["timestamp", "service", "severity", "server_id", "error_code", "resource_id", "message"]) {
      dl.appendChild(el("dt", k));
      dl.appendChild(el("dd", r[k]));
    }
    dl.appendChild(el("dt", "metadata"));
    const dd = el("dd");
    dd.appendChild(el("pre", metadataText(r.metadata)));
    dl.appendChild(dd);
    d.appendChild(dl);
    tr.after(detail);
    btn.textContent = "−";
    btn.setAttribute("aria-expanded", "true");
  });
}

App.renderers.logs = async () => {
  const limit = (App.page + 1) * PAGE;
  const d = await pipe("recent_logs", Object.assign(filterParams(true), { limit: Math.min(limit, 10000) }));
  const body = tbody("logs-table");
  const rows = d.data.slice(App.page * PAGE);
  for (const r of rows) logRow(body, r);
  if (!rows.length) emptyRow(body, 7, "No rows match.");
  const total = d.rows_before_limit_at_least;
  const first = rows.length ? App.page * PAGE + 1 : 0;
  $("logs-count").textContent = `rows ${first}–${App.page * PAGE + rows.length} of ${total}`;
  $("logs-prev").disabled = App.page === 0;
  $("logs-next").disabled = limit >= total || limit >= 10000;
};

// ---- Volume ---------------------------------------------------------------

const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];

function severityRank(s) {
  const i = SEVERITY_ORDER.indexOf(s);
  return i < 0 ? SEVERITY_ORDER.length : i;
}

function bucketLabel(sec, step) {
  const t = fmtTime(sec);
  return step >= 1440 ? t.slice(0, 10) : t.slice(0, 16);
}

App.renderers.volume = async () => {
  const [start, end] = range();
  const minutes = Math.max(1, Math.round((end - start) / 60));
  const step = STEPS.find((s) => minutes / s <= 120) || 1440;
  const params = filterParams(false);
  const [ts, an, th] = await Promise.all([
    pipe("log_timeseries", Object.assign({}, params, { step_minutes: step, limit: 10000 })),
    pipe("log_anomalies", {
      end_time: params.end_time,
      time_window_minutes: Math.min(minutes, 10080),
      service: params.service,
      severity: params.severity,
      limit: 10000,
    }).catch(() => ({ data: [] })),
    pipe("anomaly_thresholds", { service: params.service, severity: params.severity, limit: 10000 }).catch(() => ({ data: [] })),
  ]);
  const first = Math.floor(start / (step * 60)) * step * 60;
  const buckets = new Map();
  for (let t = first; t < end; t += step * 60) {
    buckets.set(t, { t, label: bucketLabel(t, step), short: bucketLabel(t, step).slice(step >= 1440 ? 5 : 11), parts: {}, total: 0, marked: false });
  }
  const series = new Set();
  for (const r of ts.data) {
    const b = buckets.get(parseTime(r.bucket));
    if (!b) continue;
    b.parts[r.severity] = (b.parts[r.severity] || 0) + r.log_count;
    b.total += r.log_count;
    series.add(r.severity);
  }
  fillTable("volume-table", ts.data, [
    [(r) => r.bucket, "time"], [(r) => r.service], [(r) => r.severity], [(r) => r.log_count, "num"],
  ], "No rows match.");
  for (const a of an.data) {
    const b = buckets.get(Math.floor(parseTime(a.minute) / (step * 60)) * step * 60);
    if (b) b.marked = true;
  }
  fillTable("anomaly-table", an.data, [
    [(a) => a.minute, "time"], [(a) => a.service], [(a) => a.severity], [(a) => a.log_count, "num"],
    [(a) => a.threshold_per_minute, "num"], [(a) => a.excess_ratio, "num"],
  ], "No minute over its threshold in this range.");
  const order = [...series].sort((a, b) => severityRank(a) - severityRank(b) || a.localeCompare(b));
  const legend = $("volume-legend");
  Charts.clear(legend);
  order.forEach((s, i) => {
    const li = el("li");
    const sw = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    sw.setAttribute("viewBox", "0 0 10 10");
    sw.setAttribute("aria-hidden", "true");
    const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    for (const [k, v] of [["width", 10], ["height", 10], ["class", `s${i % 8}`]]) r.setAttribute(k, v);
    sw.appendChild(r);
    li.appendChild(sw);
    li.appendChild(document.createTextNode(`${i + 1}. ${s} (${i === 0 ? "bottom" : "stacked above"})`));
    legend.appendChild(li);
  });
  let threshold = null;
  const f = App.filters;
  const note = $("volume-threshold");
  if (f.service && f.severity) {
    const t = th.data.find((r) => r.service === f.service && r.severity === f.severity && r.active === 1);
    if (t) {
      const perBucket = t.threshold_per_minute * step;
      threshold = { value: perBucket, label: `threshold ${t.threshold_per_minute}/min` };
      note.textContent = `Threshold for ${f.service} ${f.severity}: ${t.threshold_per_minute} rows per minute (${perBucket} per ${step}-minute bucket).`;
    } else {
      note.textContent = `No active threshold for ${f.service} ${f.severity}.`;
    }
  } else {
    note.textContent = "Pick a service and a severity to see their threshold.";
  }
  Charts.stackedBars($("volume-chart"), [...buckets.values()], order, {
    threshold,
    onPick: (b) => focusRange(b.t, b.t + step * 60),
  });
};

// ---- Errors ---------------------------------------------------------------

App.renderers.errors = async () => {
  const d = await pipe("error_distribution", Object.assign(filterParams(false), { limit: 100 }));
  Charts.hBars($("errors-chart"), d.data.map((r) => ({
    label: `${r.service} ${r.severity}`,
    value: r.error_count,
    note: `${r.error_count} (${r.percentage}%)`,
  })));
  fillTable("errors-table", d.data, [
    [(r) => r.service], [(r) => r.severity, "sev"], [(r) => r.error_count, "num"],
    [(r) => r.percentage, "num"], [(r) => r.first_seen, "time"], [(r) => r.last_seen, "time"],
  ], "No rows match.");
};

// ---- Live -----------------------------------------------------------------

const Live = { source: null, paused: false, lastId: "", key: "" };

function liveKey() {
  const f = App.filters;
  return JSON.stringify([f.service, f.severity, f.contains]);
}

function liveStop() {
  if (Live.source) {
    Live.source.close();
    Live.source = null;
  }
}

function liveState(text) {
  $("live-state").textContent = text;
}

function liveStart() {
  liveStop();
  const f = App.filters;
  const q = new URLSearchParams();
  // EventSource cannot send headers: this is the one request whose URL holds the token.
  q.set("token", App.token);
  if (f.service) q.set("service", f.service);
  if (f.severity) q.set("severity", f.severity);
  if (f.contains) q.set("contains", f.contains);
  if (Live.lastId) q.set("last_event_id", Live.lastId);
  const src = new EventSource("/v0/tail?" + q);
  Live.source = src;
  Live.key = liveKey();
  src.addEventListener("open", () => liveState("Connected: new rows appear at the top."));
  src.addEventListener("error", () => liveState(src.readyState === EventSource.CLOSED ? "Disconnected (check the token)." : "Reconnecting…"));
  src.addEventListener("row", (e) => {
    Live.lastId = e.lastEventId;
    let r;
    try {
      r = JSON.parse(e.data);
    } catch (_) {
      return;
    }
    const body = document.querySelector("#live-table tbody");
    const tr = el("tr");
    cell(tr, e.lastEventId, "num");
    cell(tr, r.timestamp, "time");
    cell(tr, r.service);
    cell(tr, r.severity, "sev");
    cell(tr, null, "msg").appendChild(el("div", r.message));
    body.insertBefore(tr, body.firstChild);
    while (body.rows.length > LIVE_MAX_ROWS) body.deleteRow(body.rows.length - 1);
  });
  src.addEventListener("lagged", (e) => {
    const p = $("live-lagged");
    p.hidden = false;
    p.textContent = `The stream fell behind and skipped ${e.data} rows (the Logs view has them).`;
  });
}

App.renderers.live = async () => {
  if (Live.paused) {
    liveState("Paused.");
    return;
  }
  if (!Live.source || Live.key !== liveKey()) {
    if (Live.key !== liveKey()) {
      Live.lastId = "";
      Charts.clear(document.querySelector("#live-table tbody"));
    }
    liveState("Connecting…");
    liveStart();
  }
};

App.leave.live = liveStop;

// ---- Alerts and thresholds --------------------------------------------------

function genericTable(id, rows) {
  const head = document.querySelector(`#${id} thead tr`);
  Charts.clear(head);
  const body = tbody(id);
  const cols = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  for (const c of cols) {
    const th = el("th", c);
    th.scope = "col";
    head.appendChild(th);
  }
  for (const r of rows) {
    const tr = el("tr");
    for (const c of cols) {
      const v = r[c];
      cell(tr, v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : v);
    }
    body.appendChild(tr);
  }
}

async function renderAlerts() {
  const note = $("alerts-note");
  try {
    const a = await api("/v0/alerts");
    const rows = Array.isArray(a) ? a : Array.isArray(a && a.alerts) ? a.alerts : Array.isArray(a && a.data) ? a.data : [];
    genericTable("alerts-table", rows.filter((r) => r && typeof r === "object"));
    note.textContent = rows.length ? "" : "No alerts.";
  } catch (err) {
    genericTable("alerts-table", []);
    note.textContent = err.status === 404
      ? "This server has no alerts endpoint (/v0/alerts); thresholds below still drive the anomaly marks."
      : `Alerts unavailable: ${err.message}`;
  }
}

async function renderThresholds() {
  const d = await pipe("anomaly_thresholds", { limit: 10000 });
  fillTable("thresholds-table", d.data, [
    [(t) => t.service], [(t) => t.severity, "sev"], [(t) => t.threshold_per_minute, "num"],
    [(t) => (t.active ? "yes" : "no")], [(t) => t.updated_at, "time"],
  ], "No thresholds.");
}

App.renderers.alerts = async () => {
  if (!$("t-service").value) $("t-service").value = App.filters.service;
  if (!$("t-severity").value) $("t-severity").value = App.filters.severity;
  await Promise.all([renderAlerts(), renderThresholds()]);
};

function setupThresholdForm() {
  $("threshold-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const row = {
      service: $("t-service").value.trim(),
      severity: $("t-severity").value.trim().toUpperCase(),
      threshold_per_minute: Number($("t-value").value),
      active: $("t-active").checked ? 1 : 0,
    };
    try {
      const r = await api("/v0/events", { name: "log_anomaly_thresholds", wait: "true" }, {
        method: "POST",
        body: JSON.stringify(row),
      });
      if (r.quarantined_rows) {
        setStatus("The threshold was refused (quarantined): check its values.", true);
      } else {
        setStatus(`Threshold saved for ${row.service} ${row.severity}.`);
      }
      await renderThresholds();
    } catch (err) {
      report(err);
    }
  });
}

function setupButtons() {
  $("logs-prev").addEventListener("click", () => {
    App.page = Math.max(0, App.page - 1);
    render();
  });
  $("logs-next").addEventListener("click", () => {
    App.page += 1;
    render();
  });
  $("live-pause").addEventListener("click", () => {
    Live.paused = !Live.paused;
    $("live-pause").textContent = Live.paused ? "Resume" : "Pause";
    $("live-pause").setAttribute("aria-pressed", String(Live.paused));
    // Resuming reconnects after the last row seen: the server replays what
    // arrived meanwhile.
    if (Live.paused) liveStop();
    render();
  });
  $("live-clear").addEventListener("click", () => Charts.clear(document.querySelector("#live-table tbody")));
}

window.addEventListener("DOMContentLoaded", () => {
  setupThresholdForm();
  setupButtons();
});
