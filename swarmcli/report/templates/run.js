// The run page: hive panels redrawn at the slider's epoch, loss bands, final losses, kinks, a
// sortable table. window.report holds the state (frame, hovered bee) and what each plot drew.
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
// views: other scripts' figures (tasks.js), each {setup(), draw(frame)}, redrawn with the slider
const report = window.report = {frame: D.frames.length - 1, hover: null, plots: {}, drawn: {}, views: []};
const byIndex = {};
for (const c of D.cells) {
  byIndex[c.index] = c;
  if (c.ypred) {
    const [nf, nb, np] = c.ypred.shape, flat = Draw.unpack16(c.ypred);
    c.y = (f, b) => flat.subarray((f * nb + b) * np, (f * nb + b + 1) * np);
  }
}

function panels(id, make) {
  const root = document.getElementById(id);
  if (!root) return;
  root.style.gridTemplateColumns = `repeat(${D.grid.cols}, minmax(0, 1fr))`;
  root.style.maxWidth = `${D.grid.cols * 460}px`;  // one cell: a readable panel, not a wall
  D.cells.forEach((c, k) => {
    const div = document.createElement("div"), cv = document.createElement("canvas");
    div.className = "panel";
    if (D.grid.by === "axes") { div.style.gridRow = c.position[0] + 1; div.style.gridColumn = c.position[1] + 1; }
    cv.dataset.cell = c.index; div.appendChild(cv); root.appendChild(div);
    make(c, cv, k);
  });
}

function beeColor(c, b) { return c.shown <= 10 ? Draw.COLORS[b % 10] : "#1f4e79"; }
function beeAlpha(c) { return c.shown <= 10 ? 0.9 : Math.max(0.08, Math.min(0.9, 2.5 / Math.sqrt(c.shown))); }

function drawHive(c) {
  const cv = report.plots["hive" + c.index], f = report.frame;
  let gone = 0;  // diverged by this epoch: not drawn, counted in the title
  for (let b = 0; b < c.shown; b++) if (c.y(f, b).every(Number.isNaN)) gone++;
  const title = c.title + (gone ? ` (${gone} of ${c.shown} diverged)` : "");
  const p = new Draw.Plot(cv, {x: [Math.min(...D.x), Math.max(...D.x)], y: D.ylim, title});
  p.clear();
  p.line(D.target_x, D.target_y, {color: "#888", dash: [5, 4], width: 1.5, id: "target"});
  const bees = [];
  for (let b = 0; b < c.shown; b++) {
    const hot = report.hover && report.hover.cell === c.index && report.hover.bee === b;
    const ys = c.y(f, b);
    p.line(D.x, ys, {color: hot ? "#000" : beeColor(c, b), alpha: hot ? 1 : beeAlpha(c),
                     width: hot ? 3 : 1.2, id: "bee" + b});
    bees.push(Array.from(ys));
  }
  const tx = D.train_x.filter((_, i) => !D.val_mask[i]), ty = D.train_y.filter((_, i) => !D.val_mask[i]);
  p.dots(tx, ty, {r: 1.8, color: "#000", id: "train"});
  if (D.val_mask.some(v => v)) {
    p.dots(D.train_x.filter((_, i) => D.val_mask[i]), D.train_y.filter((_, i) => D.val_mask[i]),
           {r: 2.2, color: "#ff7f0e", id: "held-out"});
  }
  p.done();
  report.drawn.hive = report.drawn.hive || {};
  report.drawn.hive[c.index] = {frame: f, epoch: D.frames[f], bees};
  cv._plot = p;
}

function lossRange() {
  const all = [];
  for (const c of D.cells) { all.push(...c.bands.q25, ...c.bands.q75, ...c.final);
    if (c.val_bands) all.push(...c.val_bands.q75); for (const l of c.loss) all.push(l[0]); }
  return Draw.logRange(all);
}

function drawLoss(c) {
  const cv = report.plots["loss" + c.index], ep = D.loss_epochs;
  const p = new Draw.Plot(cv, {x: [0, D.epochs], y: report.lossY, ylog: true, title: c.title, xlabel: "epoch"});
  p.clear();
  p.band(ep, c.bands.q25, c.bands.q75, {color: "#1f77b4", alpha: 0.25, id: "train-iqr"});
  p.line(ep, c.bands.q50, {color: "#1f77b4", width: 2, id: "train-median"});
  if (c.val_bands) {
    p.band(ep, c.val_bands.q25, c.val_bands.q75, {color: "#ff7f0e", alpha: 0.2, id: "val-iqr"});
    p.line(ep, c.val_bands.q50, {color: "#ff7f0e", width: 2, dash: [6, 3], id: "val-median"});
  }
  const h = report.hover;
  if (h && h.cell === c.index && h.bee < c.loss.length) {
    p.line(ep, c.loss[h.bee], {color: "#000", width: 2.5, id: "bee" + h.bee});
  }
  p.vline(D.frames[report.frame]);
  p.done();
  report.drawn.loss = report.drawn.loss || {};
  report.drawn.loss[c.index] = p.drawn.map(d => d.id);
}

function drawKinks(c) {
  const cv = report.plots["kinks" + c.index], e = D.kink_edges;
  const p = new Draw.Plot(cv, {x: [e[0], e[e.length - 1]], y: [0, report.kinkMax], title: c.title});
  p.clear(); p.bars(e, c.kinks[report.frame], {id: "kinks"});
  for (const t of D.turning_points) p.vline(t, {color: "#d62728"});
  p.done();
  report.drawn.kinks = report.drawn.kinks || {};
  report.drawn.kinks[c.index] = Array.from(c.kinks[report.frame]);
}

function drawFinal() {
  const root = document.getElementById("final");
  if (!root) return;
  const fin = D.cells.flatMap(c => c.final).filter(v => v !== null && v > 0);
  const range = fin.length ? [Math.min(...fin) / 1.3, Math.max(Math.max(...fin), 2 * Math.min(...fin)) * 1.3] : [1e-3, 1];
  const order = D.cells.slice().sort((a, b) => median(a.final) - median(b.final));
  root.innerHTML = "";
  report.drawn.final = [];
  for (const c of order) {
    const row = document.createElement("div"), lab = document.createElement("span"), cv = document.createElement("canvas");
    row.className = "strip"; lab.textContent = c.title; row.append(lab, cv); root.appendChild(row);
    const p = new Draw.Plot(cv, {x: [Math.log10(range[0]), Math.log10(range[1])], y: [0, 1]});
    p.m = {l: 4, r: 4, t: 2, b: 2};
    const c2 = p.ctx; c2.fillStyle = "#fff"; c2.fillRect(0, 0, p.w, p.h);
    const xs = c.final.filter(v => v !== null && v > 0).map(Math.log10);
    p.dots(xs, xs.map((_, i) => 0.2 + 0.6 * ((i * 0.618) % 1)), {r: 2.2, color: "#1f77b4", alpha: 0.6});
    const m = median(c.final);
    if (m > 0) p.vline(Math.log10(m), {color: "#d62728", dash: []});
    report.drawn.final.push({cell: c.index, n: xs.length});
  }
  const axis = document.createElement("div"); axis.className = "strip";
  const cv = document.createElement("canvas"); axis.append(document.createElement("span"), cv);
  root.appendChild(axis);
  const p = new Draw.Plot(cv, {x: range, y: [0, 1]});
  p.m = {l: 4, r: 4, t: 0, b: 0};
  const c2 = p.ctx; c2.fillStyle = "#333"; c2.font = "11px sans-serif"; c2.textAlign = "center"; c2.textBaseline = "top";
  const X = v => 4 + (Math.log10(v) - Math.log10(range[0])) / (Math.log10(range[1]) - Math.log10(range[0])) * (p.w - 8);
  if (!fin.length) { c2.textAlign = "left"; c2.fillText("no bee has a finite final loss (all diverged)", 4, 2); return; }
  for (const t of Draw.logTicks(range[0], range[1], Math.floor(p.w / 70))) {
    const label = Draw.fmt(t), half = c2.measureText(label).width / 2 + 1;  // never cut at an edge
    c2.fillText(label, Math.min(p.w - half, Math.max(half, X(t))), 2);
  }
}

function median(a) {
  const v = a.filter(x => x !== null).sort((p, q) => p - q);
  return v.length ? (v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2) : Infinity;
}

function setFrame(f) {
  report.frame = Math.max(0, Math.min(D.frames.length - 1, f));
  const s = document.getElementById("epoch");
  if (s) s.value = report.frame;
  const lab = document.getElementById("epoch-label");
  const word = D.task === "landscape" ? "step" : "epoch";
  if (lab) lab.textContent = `${word} ${D.frames[report.frame]} of ${D.epochs}`;
  for (const v of report.views) v.draw(report.frame);
  for (const c of D.cells) {
    if (c.ypred) drawHive(c);
    drawLoss(c);
    if (c.kinks) drawKinks(c);
  }
}
report.setFrame = setFrame;
report.hoverBee = (cell, bee) => { report.hover = bee === null ? null : {cell, bee}; setFrame(report.frame); };

function onHover(ev) {
  const cv = ev.target, p = cv._plot, c = byIndex[cv.dataset.cell];
  if (!p) return;
  const r = cv.getBoundingClientRect(), mx = ev.clientX - r.left, my = ev.clientY - r.top;
  const xv = p.invX(mx);
  let k = 0;
  for (let i = 1; i < D.x.length; i++) if (Math.abs(D.x[i] - xv) < Math.abs(D.x[k] - xv)) k = i;
  let best = null, dist = 10;
  for (let b = 0; b < c.shown; b++) {
    const v = c.y(report.frame, b)[k];
    if (Number.isFinite(v) && Math.abs(p.Y(v) - my) < dist) { dist = Math.abs(p.Y(v) - my); best = b; }
  }
  const cur = report.hover;
  if ((best === null && cur) || (best !== null && (!cur || cur.cell !== c.index || cur.bee !== best))) {
    report.hoverBee(c.index, best);
    document.getElementById("hover-label").textContent = best === null ? "" : `${c.title}: bee ${best}`;
  }
}


document.addEventListener("DOMContentLoaded", () => {
  report.lossY = lossRange();
  report.kinkMax = 1;
  for (const c of D.cells) if (c.kinks) for (const k of c.kinks) report.kinkMax = Math.max(report.kinkMax, ...k);
  panels("hive", (c, cv) => { report.plots["hive" + c.index] = cv; cv.addEventListener("mousemove", onHover); });
  panels("loss", (c, cv) => { report.plots["loss" + c.index] = cv; });
  if (D.kink_edges) panels("kinks", (c, cv) => { report.plots["kinks" + c.index] = cv; });
  for (const v of report.views) v.setup();
  const s = document.getElementById("epoch");
  if (s) {
    s.max = D.frames.length - 1;
    s.addEventListener("input", () => setFrame(+s.value));
    let timer = null;
    document.getElementById("play").addEventListener("click", ev => {
      if (timer) { clearInterval(timer); timer = null; ev.target.textContent = "▶ play"; return; }
      if (report.frame === D.frames.length - 1) setFrame(0);
      ev.target.textContent = "❚❚ pause";
      timer = setInterval(() => {
        if (report.frame >= D.frames.length - 1) { clearInterval(timer); timer = null; ev.target.textContent = "▶ play"; return; }
        setFrame(report.frame + 1);
      }, Math.max(30, 8000 / D.frames.length));
    });
  }
  setFrame(report.frame);
  drawFinal();
  document.querySelectorAll("table.sortable").forEach(Draw.sortable);
  report.loadMs = performance.now();  // navigation start -> everything drawn
  report.ready = true;
});
