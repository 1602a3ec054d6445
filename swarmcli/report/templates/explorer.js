// Seed 004's activation explorer, drawn client-side: one unit act(w x + b), and the 2-unit net
// f(x) = w1 act(v1 x + a1) + w2 act(v2 x + a2) + b against a target (7 sliders).
"use strict";
const ACT = (() => {
  const erf = x => { // Abramowitz & Stegun 7.1.26, |error| < 1.5e-7
    const s = Math.sign(x), t = 1 / (1 + 0.3275911 * Math.abs(x));
    const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
    return s * y;
  };
  return {
    relu: s => Math.max(0, s), tanh: Math.tanh, sigmoid: s => 1 / (1 + Math.exp(-s)),
    tanhshrink: s => s - Math.tanh(s), leaky_relu: s => (s > 0 ? s : 0.01 * s),
    elu: s => (s > 0 ? s : Math.exp(s) - 1), gelu: s => 0.5 * s * (1 + erf(s / Math.SQRT2)),
    silu: s => s / (1 + Math.exp(-s)), softplus: s => (s > 20 ? s : Math.log1p(Math.exp(s))),
    sin: Math.sin, identity: s => s,
  };
})();
const TARGETS = {"-x²  (seed 004)": x => -x * x, "sin(x)": Math.sin, "|x|": Math.abs,
                 "step": x => (x > 0 ? 1 : 0)};
const explorer = window.explorer = {x: Array.from({length: 101}, (_, i) => -5 + i / 10)};

function sliders(root, prefix, names, values, onChange) {
  const out = {};
  for (const n of names) {
    const lab = document.createElement("label"), inp = document.createElement("input"), val = document.createElement("output");
    Object.assign(inp, {type: "range", min: -3, max: 3, step: 0.1, value: values[n], id: prefix + n});
    lab.append(n + " ", inp, val); root.appendChild(lab);
    val.textContent = (+inp.value).toFixed(1);
    inp.addEventListener("input", () => { val.textContent = (+inp.value).toFixed(1); onChange(); });
    out[n] = inp;
  }
  return out;
}

function actSelect(id, root, onChange) {
  const sel = document.createElement("select"); sel.id = id;
  for (const a of Object.keys(ACT)) sel.add(new Option(a, a));
  const lab = document.createElement("label"); lab.append("activation ", sel); root.appendChild(lab);
  sel.addEventListener("change", onChange);
  return sel;
}

document.addEventListener("DOMContentLoaded", () => {
  const one = document.getElementById("explore-one"), two = document.getElementById("explore-two");
  if (!one || !two) return;
  const x = explorer.x;
  // one unit
  const c1 = one.querySelector(".controls");
  const s1 = sliders(c1, "ex1-", ["w", "b"], {w: 1, b: 0}, draw1), a1 = actSelect("ex1-act", c1, draw1);
  function draw1() {
    const w = +s1.w.value, b = +s1.b.value, f = ACT[a1.value], ys = x.map(v => f(w * v + b));
    const fin = ys.filter(Number.isFinite);
    const lo = Math.min(-1, ...fin), hi = Math.max(1, ...fin), pad = 0.08 * (hi - lo);
    const p = new Draw.Plot(one.querySelector("canvas"), {x: [-5, 5], y: [lo - pad, hi + pad],
                            title: `${a1.value}(${w.toFixed(1)}·x + ${b.toFixed(1)})`, xlabel: "x"});
    p.clear(); p.line(x, ys, {color: "#1f77b4", width: 2, id: "unit"}); p.done();
    explorer.one = {w, b, activation: a1.value, ys};
  }
  // two units
  const c2 = two.querySelector(".controls");
  const names = ["v1", "a1", "v2", "a2", "w1", "w2", "b"];
  const s2 = sliders(c2, "ex2-", names, {v1: 1, a1: 1, v2: 1, a2: 0, w1: 1, w2: 0, b: 0}, draw2);
  const a2 = actSelect("ex2-act", c2, draw2);
  const tsel = document.createElement("select"); tsel.id = "ex2-target";
  for (const t of Object.keys(TARGETS)) tsel.add(new Option(t, t));
  const tl = document.createElement("label"); tl.append("target ", tsel); c2.appendChild(tl);
  const outAct = document.createElement("input"); outAct.type = "checkbox"; outAct.id = "ex2-outact";
  const ol = document.createElement("label"); ol.append(outAct, " activation on the output too"); c2.appendChild(ol);
  tsel.addEventListener("change", draw2); outAct.addEventListener("change", draw2);
  function draw2() {
    const p = Object.fromEntries(names.map(n => [n, +s2[n].value])), f = ACT[a2.value], t = TARGETS[tsel.value];
    const ys = x.map(v => { const o = p.w1 * f(p.v1 * v + p.a1) + p.w2 * f(p.v2 * v + p.a2) + p.b;
                            return outAct.checked ? f(o) : o; });
    const ty = x.map(t), mse = ys.reduce((s, y, i) => s + (y - ty[i]) ** 2, 0) / x.length;
    const all = [...ys, ...ty].filter(Number.isFinite), lo = Math.min(...all), hi = Math.max(...all), pad = 0.08 * (hi - lo || 1);
    const pl = new Draw.Plot(two.querySelector("canvas"), {x: [-5, 5], y: [lo - pad, hi + pad], xlabel: "x",
                             title: `f(x) against ${tsel.value.split(" ")[0]}: MSE ${Draw.fmt(mse)}`});
    pl.clear();
    pl.line(x, ty, {color: "#ff7f0e", width: 2, dash: [6, 3], id: "target"});
    pl.line(x, ys, {color: "#1f77b4", width: 2, id: "net"});
    pl.done();
    explorer.two = {params: p, activation: a2.value, target: tsel.value, output_activation: outAct.checked, ys, mse};
  }
  draw1(); draw2();
});
