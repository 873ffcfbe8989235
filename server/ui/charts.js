// Small SVG charts drawn with DOM calls only: every label goes in as text.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(name, attrs, parent) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (parent) parent.appendChild(el);
  return el;
}

function svgText(parent, x, y, text, attrs) {
  const t = svgEl("text", Object.assign({ x, y }, attrs || {}), parent);
  t.textContent = text;
  return t;
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

// A stacked bar chart. buckets: [{t, label, parts: {series: n}, total, marked}];
// series: names in stacking order; opts: {threshold: {value, label}, onPick(bucket)}.
function stackedBars(svg, buckets, series, opts) {
  clear(svg);
  const W = 800, H = 260, L = 48, R = 8, T = 12, B = 34;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  let max = Math.max(0, ...buckets.map((b) => b.total));
  if (opts.threshold) max = Math.max(max, opts.threshold.value);
  max = Math.max(niceMax(max), 4);
  const plotW = W - L - R, plotH = H - T - B;
  const y = (v) => T + plotH - (v / max) * plotH;
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    svgEl("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }, svg);
    svgText(svg, L - 4, y(v) + 4, formatCount(v), { class: "axis", "text-anchor": "end" });
  }
  const n = Math.max(buckets.length, 1);
  const bw = plotW / n;
  const labelEvery = Math.ceil(n / 8);
  buckets.forEach((b, i) => {
    const x = L + i * bw;
    const g = svgEl("g", { class: "bar", tabindex: 0, role: "button" }, svg);
    g.setAttribute("aria-label", `${b.label}: ${b.total} rows${b.marked ? ", anomalous" : ""}`);
    let acc = 0;
    series.forEach((s, si) => {
      const v = b.parts[s] || 0;
      if (!v) return;
      const r = svgEl("rect", {
        x: x + bw * 0.1, width: Math.max(bw * 0.8, 1),
        y: y(acc + v), height: Math.max(y(acc) - y(acc + v), 0.5),
        class: `s${si % 8}`,
      }, g);
      svgEl("title", {}, r).textContent = `${b.label} ${s}: ${v}`;
      acc += v;
    });
    if (b.marked) {
      svgText(g, x + bw / 2, y(b.total) - 3, "▲", { class: "anomaly", "text-anchor": "middle" });
    }
    if (i % labelEvery === 0) {
      svgText(svg, x + bw / 2, H - B + 16, b.short, { class: "axis", "text-anchor": "middle" });
    }
    if (opts.onPick) {
      g.addEventListener("click", () => opts.onPick(b));
      g.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); opts.onPick(b); }
      });
    }
  });
  if (opts.threshold) {
    const ty = y(opts.threshold.value);
    svgEl("line", { x1: L, x2: W - R, y1: ty, y2: ty, class: "threshold" }, svg);
    svgText(svg, W - R - 2, ty - 4, opts.threshold.label, { class: "threshold-label", "text-anchor": "end" });
  }
  if (!buckets.length) svgText(svg, W / 2, H / 2, "no rows in this range", { class: "axis", "text-anchor": "middle" });
}

// Horizontal bars with their labels: rows [{label, value, note}].
function hBars(svg, rows) {
  clear(svg);
  const W = 800, rowH = 26, L = 8, top = 4;
  const H = Math.max(rows.length * rowH + top * 2, 40);
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const max = niceMax(Math.max(0, ...rows.map((r) => r.value)));
  rows.forEach((r, i) => {
    const yy = top + i * rowH;
    const w = Math.max(((W - 360) * r.value) / max, 1);
    svgEl("rect", { x: 250, y: yy + 4, width: w, height: rowH - 8, class: `s${i % 8}` }, svg);
    svgText(svg, L, yy + rowH / 2 + 4, clip(r.label, 36), { class: "label" });
    svgText(svg, 250 + w + 6, yy + rowH / 2 + 4, r.note, { class: "axis" });
  });
  if (!rows.length) svgText(svg, W / 2, H / 2 + 4, "no rows in this range", { class: "axis", "text-anchor": "middle" });
}

function clip(s, n) {
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

function formatCount(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(v % 1e6 ? 1 : 0) + "M";
  if (v >= 1e3) return (v / 1e3).toFixed(v % 1e3 ? 1 : 0) + "k";
  return String(Math.round(v * 100) / 100);
}

window.Charts = { stackedBars, hBars, clear };
