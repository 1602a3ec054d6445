// The sweep page: the cells table filtered as you type, heat maps for any two swept keys.
"use strict";
const S = JSON.parse(document.getElementById("data").textContent);
const sweep = window.sweep = {heat: null, shown: 0};

function viridis(t) { // 5-stop approximation of matplotlib's viridis, t in [0, 1]
  const st = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const u = Math.max(0, Math.min(1, t)) * 4, i = Math.min(3, Math.floor(u)), f = u - i;
  return "rgb(" + st[i].map((v, k) => Math.round(v + f * (st[i + 1][k] - v))).join(",") + ")";
}

function heatFor(x, y) {
  for (const h of S.heatmaps) {
    if (h.x === x && h.y === y) return {xs: h.xs, ys: h.ys, m: h.median};
    if (h.x === y && h.y === x) return {xs: h.ys, ys: h.xs, m: h.xs.map((_, i) => h.ys.map((_, j) => h.median[j][i]))};
  }
  return null;
}

function drawHeat() {
  const x = document.getElementById("heat-x").value, y = document.getElementById("heat-y").value;
  const root = document.getElementById("heat"), h = heatFor(x, y);
  root.innerHTML = "";
  if (!h) { root.textContent = x === y ? "pick two different keys" : "no such pair"; sweep.heat = null; return; }
  const vals = h.m.flat().filter(v => v !== null && v > 0);
  const lo = Math.log10(Math.min(...vals)), hi = Math.log10(Math.max(...vals));
  const t = document.createElement("table"), head = t.insertRow();
  head.insertCell().textContent = `${y} \\ ${x}`;
  for (const vx of h.xs) head.insertCell().textContent = vx;
  h.ys.forEach((vy, j) => {
    const r = t.insertRow(); r.insertCell().textContent = vy;
    h.xs.forEach((_, i) => {
      const v = h.m[j][i], c = r.insertCell();
      c.textContent = v === null ? "–" : Draw.fmt(v);
      if (v !== null && v > 0) {
        const u = hi > lo ? (Math.log10(v) - lo) / (hi - lo) : 0;
        c.style.background = viridis(u); c.style.color = u > 0.6 ? "#000" : "#fff";
      }
    });
  });
  t.id = "heat-table"; root.appendChild(t);
  sweep.heat = {x, y, xs: h.xs, ys: h.ys, median: h.m};
}

function filterRows() {
  const q = document.getElementById("filter").value.trim().toLowerCase();
  let n = 0;
  for (const r of document.querySelectorAll("#cells tbody tr")) {
    const show = !q || r.textContent.toLowerCase().includes(q);
    r.style.display = show ? "" : "none"; n += show;
  }
  sweep.shown = n;
  document.getElementById("shown").textContent = `${n} of ${S.groups.length} rows`;
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable").forEach(Draw.sortable);
  document.getElementById("filter").addEventListener("input", filterRows);
  filterRows();
  if (S.heatmaps.length) {
    const keys = [...new Set(S.heatmaps.flatMap(h => [h.x, h.y]))];
    for (const id of ["heat-x", "heat-y"]) {
      const sel = document.getElementById(id);
      for (const k of keys) sel.add(new Option(k, k));
      sel.addEventListener("change", drawHeat);
    }
    document.getElementById("heat-x").value = S.heatmaps[0].x;
    document.getElementById("heat-y").value = S.heatmaps[0].y;
    drawHeat();
  }
  sweep.loadMs = performance.now();
  sweep.ready = true;
});
