// A landscape run's particle paths and a classification run's decision boundaries (D.view, from
// swarmcli/report/tasks.py), redrawn at the slider's frame through run.js's report.views.
// report.drawn.paths[cell] / report.drawn.bounds[cell] hold what each panel last drew.
"use strict";
(() => {
  const V = D.view;
  if (!V) return;
  const title = {};
  for (const c of D.cells) title[c.index] = c.title;

  function grid(root, n) {
    const cols = Math.max(1, Math.ceil(Math.sqrt(n)));
    root.style.gridTemplateColumns = `repeat(${cols}, minmax(0, 1fr))`;
    root.style.maxWidth = `${cols * 520}px`;
  }

  function paths() {
    const colour = {}, tracks = {};
    D.cells.forEach((c, k) => { colour[c.index] = Draw.COLORS[k % 10]; });
    for (const [cell, p] of Object.entries(V.paths)) tracks[cell] = {nb: p.shape[1], xy: Draw.unpack16(p)};
    const surf = V.panels.map(P => {
      const [h, w] = P.logz.shape;
      return {w, h, rgba: Draw.heat(Draw.unpack16(P.logz), h, w, P.logz.lo, P.logz.hi, Draw.VIRIDIS)};
    });
    const many = V.bees > 3;
    function panel(P, k, f) {
      const cv = report.plots["paths" + k], [x0, x1, y0, y1] = P.domain, S = surf[k];
      const p = new Draw.Plot(cv, {x: [x0, x1], y: [y0, y1], title: V.panels.length > 1 ? P.surface : ""});
      p.clear();
      const dx = (x1 - x0) / Math.max(1, S.w - 1) / 2, dy = (y1 - y0) / Math.max(1, S.h - 1) / 2;
      p.image(S.rgba, S.w, S.h, x0 - dx, x1 + dx, y0 - dy, y1 + dy, {alpha: 0.55, id: "surface"});
      for (const cell of P.cells) {
        const t = tracks[cell], pos = [];
        for (let b = 0; b < t.nb; b++) {
          const xs = [], ys = [];
          for (let g = 0; g <= f; g++) { const o = (g * t.nb + b) * 2; xs.push(t.xy[o]); ys.push(t.xy[o + 1]); }
          p.line(xs, ys, {color: colour[cell], width: many ? 1 : 1.8, alpha: many ? 0.55 : 0.95, id: `cell${cell}-bee${b}`});
          const now = [xs[f], ys[f]];
          pos.push(now.every(Number.isFinite) ? now : null);
        }
        const live = pos.filter(v => v);
        p.dots(live.map(v => v[0]), live.map(v => v[1]), {r: 4, color: colour[cell], edge: "#000", id: `cell${cell}-now`});
        report.drawn.paths[cell] = {frame: f, epoch: D.frames[f], panel: k, pos};
      }
      for (const m of P.minima) p.star(m[0], m[1], {r: 9, id: "minimum"});
      if (P.start) p.dots([P.start[0]], [P.start[1]], {r: 4.5, color: "#000", hollow: true, width: 1.5, id: "start"});
      p.done();
    }
    report.drawn.paths = {};
    report.views.push({
      setup() {
        const root = document.getElementById("paths");
        grid(root, V.panels.length);
        V.panels.forEach((P, k) => {
          const div = document.createElement("div"), cv = document.createElement("canvas");
          div.className = "panel square"; cv.dataset.panel = k;
          div.appendChild(cv); root.appendChild(div); report.plots["paths" + k] = cv;
        });
        const legend = document.getElementById("paths-legend");
        for (const c of D.cells) {
          const item = document.createElement("span"), sw = document.createElement("i");
          sw.style.background = colour[c.index]; item.append(sw, c.title); legend.appendChild(item);
        }
      },
      draw(f) { V.panels.forEach((P, k) => panel(P, k, f)); },
    });
  }

  function boundaries() {
    const n = V.side, [a0, b0, a1, b1] = V.extent, per = n * n;
    const gx = q => a0 + q * (b0 - a0) / (n - 1), gy = r => a1 + r * (b1 - a1) / (n - 1);
    const cells = {};
    for (const [cell, v] of Object.entries(V.cells)) {
      const seg = Draw.unpack16(v.segments), start = [];
      for (let i = 0; i < seg.length; i += 2) { seg[i] = gx(seg[i]); seg[i + 1] = gy(seg[i + 1]); }
      let at = 0;  // where frame f's bee b's segments start
      for (const row of v.counts) { const s = []; for (const k of row) { s.push(at); at += k; } start.push(s); }
      cells[cell] = {mean: Draw.unpack16(v.mean), seg, start, counts: v.counts};
    }
    const P = V.points, cls = ["#2b6cb0", "#c0392b"], colour = P.label.map(l => cls[l]);
    const pick = m => ({x: P.x.filter((_, i) => m[i]), y: P.y.filter((_, i) => m[i]), c: colour.filter((_, i) => m[i])});
    const train = pick(P.x.map((_, i) => !P.test[i] && !P.val[i])), test = pick(P.test), val = pick(P.val);
    const r = Math.max(2, Math.min(4, 60 / Math.sqrt(P.x.length)));
    const alpha = Math.max(0.15, Math.min(0.9, 3 / Math.sqrt(V.bees)));
    const dx = (b0 - a0) / (n - 1) / 2, dy = (b1 - a1) / (n - 1) / 2;  // half a grid step
    function panel(c, f) {
      const cv = report.plots["bounds" + c.index], C = cells[c.index];
      const mean = C.mean.subarray(f * per, (f + 1) * per);
      const p = new Draw.Plot(cv, {x: [a0, b0], y: [a1, b1], title: c.title});
      p.clear();
      p.image(Draw.heat(mean, n, n, 0, 1, Draw.RDBU), n, n, a0 - dx, b0 + dx, a1 - dy, b1 + dy, {alpha: 0.6, id: "mean"});
      for (let b = 0; b < C.counts[f].length; b++) {
        p.segments(C.seg, C.start[f][b], C.counts[f][b], {color: "#222", alpha, width: 0.9, id: "bee" + b});
      }
      p.dots(train.x, train.y, {r, color: train.c, edge: "#fff", id: "train"});
      p.dots(test.x, test.y, {r: r + 0.8, color: test.c, hollow: true, width: 1.4, id: "test"});
      p.dots(val.x, val.y, {r: r + 0.5, color: val.c, hollow: true, square: true, width: 1.4, id: "validation"});
      p.done();
      report.drawn.bounds[c.index] = {frame: f, epoch: D.frames[f], mean: Array.from(mean, v => Number.isNaN(v) ? null : v),
                                      segments: Array.from(C.counts[f])};
    }
    report.drawn.bounds = {};
    report.views.push({
      setup() { panels("bounds", (c, cv) => { report.plots["bounds" + c.index] = cv; }); },
      draw(f) { for (const c of D.cells) panel(c, f); },
    });
  }

  if (V.kind === "paths") paths(); else boundaries();
})();
