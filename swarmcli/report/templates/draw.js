// A small canvas drawer: axes with round ticks, lines, bands, bars, text. Every figure of the
// report goes through it, and each Plot keeps what it last drew (plot.drawn) so a test can read
// back exactly the numbers on screen.
"use strict";
const Draw = (() => {
  const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                  "#7f7f7f", "#bcbd22", "#17becf"];
  function niceTicks(lo, hi, n) {
    const span = hi - lo || 1, raw = span / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw) || 10 * mag;
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
      out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
    }
    return out;
  }
  // Ticks for a log axis: decades, thinned to at most n; 1-2-5 within a narrow range.
  function logTicks(lo, hi, n) {
    const a = Math.floor(Math.log10(lo)), b = Math.ceil(Math.log10(hi));
    for (const mant of [[1], [1, 2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
      const out = [];
      for (let e = a; e <= b; e++) for (const m of mant) { const v = m * Math.pow(10, e); if (v >= lo && v <= hi) out.push(v); }
      if (out.length >= 3 || mant.length === 9) {
        const step = Math.ceil(out.length / n);
        return out.filter((_, i) => i % step === 0);
      }
    }
    return [];
  }
  function fmt(v) {
    if (v === 0) return "0";
    const a = Math.abs(v);
    return a >= 1e4 || a < 1e-3 ? v.toExponential(0) : String(+v.toPrecision(3));
  }
  class Plot {
    constructor(canvas, opt) {
      this.canvas = canvas; this.opt = opt;
      const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth || canvas.width,
        h = canvas.clientHeight || canvas.height;
      canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
      this.w = w; this.h = h;
      this.ctx = canvas.getContext("2d"); this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      this.m = {l: 48, r: 10, t: opt.title ? 22 : 8, b: opt.xlabel ? 36 : 22};
      this.drawn = [];
    }
    X(v) { const [a, b] = this.opt.x; return this.m.l + (v - a) / (b - a) * (this.w - this.m.l - this.m.r); }
    Y(v) {
      let [a, b] = this.opt.y;
      if (this.opt.ylog) { v = Math.log10(v); a = Math.log10(a); b = Math.log10(b); }
      return this.h - this.m.b - (v - a) / (b - a) * (this.h - this.m.t - this.m.b);
    }
    invX(px) { const [a, b] = this.opt.x; return a + (px - this.m.l) / (this.w - this.m.l - this.m.r) * (b - a); }
    clear() {
      const c = this.ctx, o = this.opt, m = this.m;
      this.drawn = [];
      c.clearRect(0, 0, this.w, this.h); c.fillStyle = "#fff"; c.fillRect(0, 0, this.w, this.h);
      c.strokeStyle = "#ccc"; c.lineWidth = 1; c.font = "11px sans-serif"; c.fillStyle = "#333";
      c.strokeRect(m.l, m.t, this.w - m.l - m.r, this.h - m.t - m.b);
      c.textAlign = "center"; c.textBaseline = "top";
      for (const t of niceTicks(o.x[0], o.x[1], Math.max(2, Math.floor(this.w / 80)))) {
        c.fillText(fmt(t), this.X(t), this.h - m.b + 3);
      }
      c.textAlign = "right"; c.textBaseline = "middle";
      const yt = o.ylog ? this.logTicks() : niceTicks(o.y[0], o.y[1], Math.max(2, Math.floor(this.h / 45)));
      for (const t of yt) c.fillText(fmt(t), m.l - 4, this.Y(t));
      if (o.title) { c.textAlign = "center"; c.textBaseline = "top"; c.font = "bold 12px sans-serif";
        c.fillText(o.title, (m.l + this.w - m.r) / 2, 4, this.w - 8); c.font = "11px sans-serif"; }
      if (o.xlabel) { c.textAlign = "center"; c.textBaseline = "bottom";
        c.fillText(o.xlabel, (m.l + this.w - m.r) / 2, this.h - 2); }
      c.save(); c.beginPath(); c.rect(m.l, m.t, this.w - m.l - m.r, this.h - m.t - m.b); c.clip();
      this.clipped = true;
    }
    logTicks() { return logTicks(this.opt.y[0], this.opt.y[1], Math.max(2, Math.floor(this.h / 40))); }
    done() { if (this.clipped) { this.ctx.restore(); this.clipped = false; } }
    ok(v) { return v !== null && Number.isFinite(v) && (!this.opt.ylog || v > 0); }
    line(xs, ys, st = {}) {
      const c = this.ctx; let pen = false;
      c.beginPath();
      for (let i = 0; i < xs.length; i++) {
        if (!this.ok(ys[i])) { pen = false; continue; }
        const px = this.X(xs[i]), py = this.Y(ys[i]);
        if (pen) c.lineTo(px, py); else c.moveTo(px, py);
        pen = true;
      }
      c.strokeStyle = st.color || "#1f4e79"; c.globalAlpha = st.alpha ?? 1;
      c.lineWidth = st.width || 1.2; c.setLineDash(st.dash || []); c.stroke();
      c.globalAlpha = 1; c.setLineDash([]);
      this.drawn.push({kind: "line", id: st.id, ys: Array.from(ys)});
    }
    dots(xs, ys, st = {}) {  // st.hollow: an outline; st.square: squares; st.edge: a rim
      const c = this.ctx, r = st.r || 2, cols = Array.isArray(st.color) ? st.color : null;
      c.globalAlpha = st.alpha ?? 1; c.lineWidth = st.width || 1.1;
      for (let i = 0; i < xs.length; i++) {
        if (!this.ok(ys[i]) || !Number.isFinite(xs[i])) continue;
        const col = cols ? cols[i] : st.color || "#000", x = this.X(xs[i]), y = this.Y(ys[i]);
        c.beginPath();
        if (st.square) c.rect(x - r, y - r, 2 * r, 2 * r); else c.arc(x, y, r, 0, 2 * Math.PI);
        if (st.hollow) { c.strokeStyle = col; c.stroke(); continue; }
        c.fillStyle = col; c.fill();
        if (st.edge) { c.strokeStyle = st.edge; c.lineWidth = 0.6; c.stroke(); }
      }
      c.globalAlpha = 1;
      this.drawn.push({kind: "dots", id: st.id, ys: Array.from(ys)});
    }
    band(xs, lo, hi, st = {}) {
      const c = this.ctx, idx = xs.map((_, i) => i).filter(i => this.ok(lo[i]) && this.ok(hi[i]));
      if (!idx.length) return;
      c.beginPath();
      idx.forEach((i, k) => k ? c.lineTo(this.X(xs[i]), this.Y(hi[i])) : c.moveTo(this.X(xs[i]), this.Y(hi[i])));
      for (const i of idx.slice().reverse()) c.lineTo(this.X(xs[i]), this.Y(lo[i]));
      c.closePath(); c.fillStyle = st.color || "#1f77b4"; c.globalAlpha = st.alpha ?? 0.25; c.fill();
      c.globalAlpha = 1;
      this.drawn.push({kind: "band", id: st.id});
    }
    bars(edges, counts, st = {}) {
      const c = this.ctx; c.fillStyle = st.color || "#1f77b4"; c.globalAlpha = st.alpha ?? 0.8;
      for (let i = 0; i < counts.length; i++) {
        if (!counts[i]) continue;
        const x0 = this.X(edges[i]), x1 = this.X(edges[i + 1]), y = this.Y(counts[i]);
        c.fillRect(x0, y, Math.max(1, x1 - x0 - 0.5), this.Y(this.opt.y[0]) - y);
      }
      c.globalAlpha = 1;
      this.drawn.push({kind: "bars", id: st.id, ys: Array.from(counts)});
    }
    // An RGBA image (row 0 at the top) stretched over [x0, x1] x [y0, y1], smoothed.
    image(rgba, w, h, x0, x1, y0, y1, st = {}) {
      const off = document.createElement("canvas"); off.width = w; off.height = h;
      off.getContext("2d").putImageData(new ImageData(rgba, w, h), 0, 0);
      const c = this.ctx; c.imageSmoothingEnabled = true; c.globalAlpha = st.alpha ?? 1;
      c.drawImage(off, this.X(x0), this.Y(y1), this.X(x1) - this.X(x0), this.Y(y0) - this.Y(y1));
      c.globalAlpha = 1;
      this.drawn.push({kind: "image", id: st.id, w, h});
    }
    // Line segments: flat [x0, y0, x1, y1, ...] from index `from`, `n` of them, as one path.
    segments(flat, from, n, st = {}) {
      const c = this.ctx; c.beginPath();
      for (let i = from; i < from + n; i++) {
        c.moveTo(this.X(flat[4 * i]), this.Y(flat[4 * i + 1]));
        c.lineTo(this.X(flat[4 * i + 2]), this.Y(flat[4 * i + 3]));
      }
      c.strokeStyle = st.color || "#222"; c.globalAlpha = st.alpha ?? 1; c.lineWidth = st.width || 1;
      c.stroke(); c.globalAlpha = 1;
      this.drawn.push({kind: "segments", id: st.id, n});
    }
    star(x, y, st = {}) {
      const c = this.ctx, r = st.r || 8, px = this.X(x), py = this.Y(y);
      c.beginPath();
      for (let k = 0; k < 10; k++) {
        const a = -Math.PI / 2 + k * Math.PI / 5, q = k % 2 ? r * 0.45 : r;
        c.lineTo(px + q * Math.cos(a), py + q * Math.sin(a));
      }
      c.closePath(); c.fillStyle = st.color || "#d62728"; c.fill();
      c.strokeStyle = "#fff"; c.lineWidth = 0.8; c.stroke();
      this.drawn.push({kind: "star", id: st.id, x, y});
    }
    vline(x, st = {}) {
      const c = this.ctx; c.beginPath(); c.moveTo(this.X(x), this.m.t); c.lineTo(this.X(x), this.h - this.m.b);
      c.strokeStyle = st.color || "#999"; c.lineWidth = 1; c.setLineDash(st.dash || [4, 3]); c.stroke(); c.setLineDash([]);
    }
  }
  // Predictions travel as uint16 codes over [lo, hi] (swarmcli/report/data.py pack16).
  function unpack16(p) {
    const bin = atob(p.b64), bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const q = new Uint16Array(bytes.buffer), out = new Float64Array(q.length);
    const step = (p.hi - p.lo) / 65534;
    for (let i = 0; i < q.length; i++) out[i] = q[i] === 65535 ? NaN : p.lo + q[i] * step;
    return out;
  }
  // A colour map from evenly spaced stops: v in [0, 1] -> [r, g, b].
  function colormap(stops) {
    const rgb = stops.map(h => [1, 3, 5].map(i => parseInt(h.slice(i, i + 2), 16)));
    return v => {
      const t = Math.max(0, Math.min(1, v)) * (rgb.length - 1), i = Math.min(rgb.length - 2, Math.floor(t)), f = t - i;
      return rgb[i].map((a, k) => Math.round(a + (rgb[i + 1][k] - a) * f));
    };
  }
  const VIRIDIS = colormap(["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]);
  const RDBU = colormap(["#2166ac", "#92c5de", "#f7f7f7", "#f4a582", "#b2182b"]);  // blue 0, red 1
  // values [h, w] (row 0 lowest y) over [lo, hi] as an image, row 0 on top; NaN: transparent.
  function heat(values, h, w, lo, hi, cmap) {
    const out = new Uint8ClampedArray(w * h * 4);
    for (let r = 0; r < h; r++) for (let q = 0; q < w; q++) {
      const v = values[r * w + q], o = ((h - 1 - r) * w + q) * 4;
      if (!Number.isFinite(v)) continue;
      const [R, G, B] = cmap((v - lo) / (hi - lo || 1));
      out[o] = R; out[o + 1] = G; out[o + 2] = B; out[o + 3] = 255;
    }
    return out;
  }
  function logRange(values) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) if (v !== null && v > 0 && Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (!Number.isFinite(lo)) return [1e-3, 1];
    return [lo / 1.5, Math.max(hi, lo * 10) * 1.5];
  }
  // Click a header to sort by it (numbers by data-v when given), again to reverse.
  function sortable(table) {
    table.querySelectorAll("th").forEach((th, col) => th.addEventListener("click", () => {
      const body = table.tBodies[0], rows = Array.from(body.rows);
      const dir = th.dataset.dir === "asc" ? -1 : 1;
      table.querySelectorAll("th").forEach(h => { delete h.dataset.dir; });
      th.dataset.dir = dir === 1 ? "asc" : "desc";
      const key = r => { const v = r.cells[col].dataset.v ?? r.cells[col].textContent;
        const n = parseFloat(v); return Number.isNaN(n) ? v : n; };
      rows.sort((a, b) => { const x = key(a), y = key(b); return (x > y ? 1 : x < y ? -1 : 0) * dir; });
      rows.forEach(r => body.appendChild(r));
    }));
  }
  return {Plot, COLORS, VIRIDIS, RDBU, unpack16, heat, logRange, fmt, niceTicks, logTicks, sortable};
})();
