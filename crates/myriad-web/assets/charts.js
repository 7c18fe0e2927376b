// Charts drawn on a canvas: lines over steps (or dates), observed points,
// and bars. Small on purpose: no library, so the page works offline.
"use strict";

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function niceStep(span, target) {
  const raw = span / Math.max(1, target);
  const mag = Math.pow(10, Math.floor(Math.log10(raw || 1)));
  for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

function fmt(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(0) + "k";
  if (a >= 100 || v === Math.round(v)) return String(Math.round(v));
  return v.toPrecision(3).replace(/\.?0+$/, "");
}

function setup(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 600, h = canvas.clientHeight || 260;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px system-ui, sans-serif";
  return { ctx, w, h };
}

// spec: {title, ylabel, series: [{label, xs, ys, color, markers}], dates: (x -> "YYYY-MM-DD") | null,
//        xmin, xmax}
function lineChart(canvas, spec) {
  const { ctx, w, h } = setup(canvas);
  const L = 58, R = 12, T = 22, B = 40;
  let x0 = spec.xmin, x1 = spec.xmax, y0 = 0, y1 = -Infinity;
  for (const s of spec.series) {
    for (let i = 0; i < s.xs.length; i++) {
      const y = s.ys[i];
      if (y === null || !isFinite(y)) continue;
      if (x0 === undefined || s.xs[i] < x0) x0 = s.xs[i];
      if (x1 === undefined || s.xs[i] > x1) x1 = s.xs[i];
      if (y > y1) y1 = y;
      if (y < y0) y0 = y;
    }
  }
  ctx.fillStyle = "#222";
  ctx.font = "bold 12px system-ui, sans-serif";
  ctx.fillText(spec.title || "", L, 14);
  ctx.font = "11px system-ui, sans-serif";
  if (!isFinite(y1) || x0 === undefined) {
    ctx.fillStyle = "#888";
    ctx.fillText("waiting for data…", L + 10, T + 30);
    return;
  }
  if (y1 === y0) y1 = y0 + 1;
  if (x1 === x0) x1 = x0 + 1;
  const ystep = niceStep(y1 - y0, 5);
  y1 = Math.ceil(y1 / ystep) * ystep;
  const X = (x) => L + (x - x0) / (x1 - x0) * (w - L - R);
  const Y = (y) => h - B - (y - y0) / (y1 - y0) * (h - T - B);
  ctx.strokeStyle = "#e5e5e5";
  ctx.fillStyle = "#555";
  ctx.textAlign = "right";
  for (let y = Math.ceil(y0 / ystep) * ystep; y <= y1 + 1e-9; y += ystep) {
    ctx.beginPath(); ctx.moveTo(L, Y(y)); ctx.lineTo(w - R, Y(y)); ctx.stroke();
    ctx.fillText(fmt(y), L - 4, Y(y) + 4);
  }
  ctx.textAlign = "center";
  const xstep = Math.max(1, niceStep(x1 - x0, Math.floor((w - L - R) / (spec.dates ? 90 : 60))));
  for (let x = Math.ceil(x0 / xstep) * xstep; x <= x1; x += xstep) {
    ctx.beginPath(); ctx.moveTo(X(x), h - B); ctx.lineTo(X(x), h - B + 4); ctx.stroke();
    const label = spec.dates ? (spec.dates(x) || String(x)) : String(x);
    ctx.fillText(label, X(x), h - B + 15);
  }
  ctx.fillText(spec.dates ? "date" : "step", (L + w - R) / 2, h - 6);
  ctx.save();
  ctx.translate(12, (T + h - B) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(spec.ylabel || "", 0, 0);
  ctx.restore();
  ctx.strokeStyle = "#999";
  ctx.strokeRect(L, T, w - L - R, h - T - B);
  spec.series.forEach((s, k) => {
    const c = s.color || PALETTE[k % PALETTE.length];
    ctx.strokeStyle = c; ctx.fillStyle = c; ctx.lineWidth = 1.6;
    if (s.markers) {
      for (let i = 0; i < s.xs.length; i++) {
        if (s.ys[i] === null || !isFinite(s.ys[i])) continue;
        ctx.beginPath(); ctx.arc(X(s.xs[i]), Y(s.ys[i]), 2.6, 0, 2 * Math.PI); ctx.fill();
      }
    } else {
      ctx.beginPath();
      let pen = false;
      // At most ~2 points per pixel: long runs stay cheap to redraw.
      const every = Math.max(1, Math.floor(s.xs.length / (2 * (w - L - R))));
      for (let i = 0; i < s.xs.length; i += every) {
        const y = s.ys[i];
        if (y === null || !isFinite(y)) { pen = false; continue; }
        if (pen) ctx.lineTo(X(s.xs[i]), Y(y)); else ctx.moveTo(X(s.xs[i]), Y(y));
        pen = true;
      }
      ctx.stroke();
    }
  });
  ctx.lineWidth = 1;
  ctx.textAlign = "left";
  let lx = L + 8, ly = T + 12;
  spec.series.forEach((s, k) => {
    const c = s.color || PALETTE[k % PALETTE.length];
    const text = s.label;
    const tw = ctx.measureText(text).width + 26;
    if (lx + tw > w - R) { lx = L + 8; ly += 14; }
    ctx.fillStyle = c;
    if (s.markers) { ctx.beginPath(); ctx.arc(lx + 7, ly - 4, 3, 0, 2 * Math.PI); ctx.fill(); }
    else ctx.fillRect(lx, ly - 5, 14, 2.5);
    ctx.fillStyle = "#222";
    ctx.fillText(text, lx + 18, ly);
    lx += tw;
  });
}

// spec: {title, ylabel, labels: [...], values: [...]}
function barChart(canvas, spec) {
  const { ctx, w, h } = setup(canvas);
  const L = 58, R = 12, T = 22, B = 40;
  ctx.fillStyle = "#222";
  ctx.font = "bold 12px system-ui, sans-serif";
  ctx.fillText(spec.title || "", L, 14);
  ctx.font = "11px system-ui, sans-serif";
  const n = spec.values.length;
  let y1 = Math.max(0, ...spec.values.filter((v) => isFinite(v)));
  if (!n || y1 === 0) y1 = 1;
  const ystep = niceStep(y1, 5);
  y1 = Math.ceil(y1 / ystep) * ystep;
  const Y = (y) => h - B - y / y1 * (h - T - B);
  ctx.strokeStyle = "#e5e5e5"; ctx.fillStyle = "#555"; ctx.textAlign = "right";
  for (let y = 0; y <= y1 + 1e-9; y += ystep) {
    ctx.beginPath(); ctx.moveTo(L, Y(y)); ctx.lineTo(w - R, Y(y)); ctx.stroke();
    ctx.fillText(fmt(y), L - 4, Y(y) + 4);
  }
  const bw = (w - L - R) / Math.max(1, n);
  ctx.textAlign = "center";
  spec.values.forEach((v, i) => {
    ctx.fillStyle = PALETTE[i % PALETTE.length];
    const top = Y(isFinite(v) ? v : 0);
    ctx.fillRect(L + i * bw + bw * 0.15, top, bw * 0.7, h - B - top);
    ctx.fillStyle = "#222";
    ctx.fillText(spec.labels[i], L + (i + 0.5) * bw, h - B + 15);
    ctx.fillText(fmt(v), L + (i + 0.5) * bw, top - 4);
  });
  ctx.save();
  ctx.translate(12, (T + h - B) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(spec.ylabel || "", 0, 0);
  ctx.restore();
}

// Points (x, y, heading) from the packed frame of /points, coloured by heading.
function pointsView(canvas, buffer) {
  const f = new Float32Array(buffer);
  const [total, shown, x0, x1, y0, y1] = f;
  const { ctx, w, h } = setup(canvas);
  const size = Math.min(w, h) - 20;
  const dpr = window.devicePixelRatio || 1;
  const px = Math.max(1, Math.round(size * dpr));
  const img = ctx.createImageData(px, px);
  const spanX = (x1 - x0) || 1, spanY = (y1 - y0) || 1, span = Math.max(spanX, spanY);
  const data = img.data;
  for (let k = 0; k < px * px; k++) { data[4 * k] = 250; data[4 * k + 1] = 250; data[4 * k + 2] = 250; data[4 * k + 3] = 255; }
  for (let i = 0; i < shown; i++) {
    const x = f[6 + 3 * i], y = f[7 + 3 * i], th = f[8 + 3 * i];
    const cx = Math.floor((x - x0) / span * (px - 1)), cy = px - 1 - Math.floor((y - y0) / span * (px - 1));
    if (cx < 0 || cy < 0 || cx >= px || cy >= px) continue;
    let r = 30, g = 30, b = 30;
    if (isFinite(th)) {
      const hue = ((th % (2 * Math.PI)) + 2 * Math.PI) % (2 * Math.PI) / (2 * Math.PI) * 6;
      const k = Math.floor(hue), t = hue - k;
      const rgb = [[1, t, 0], [1 - t, 1, 0], [0, 1, t], [0, 1 - t, 1], [t, 0, 1], [1, 0, 1 - t]][k % 6];
      r = 40 + 190 * rgb[0]; g = 40 + 190 * rgb[1]; b = 40 + 190 * rgb[2];
    }
    for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
      const p = 4 * ((cy + dy) * px + cx + dx);
      if (cx + dx < px && cy + dy < px) { data[p] = r; data[p + 1] = g; data[p + 2] = b; }
    }
  }
  const off = document.createElement("canvas");
  off.width = px; off.height = px;
  off.getContext("2d").putImageData(img, 0, 0);
  ctx.drawImage(off, 10, 10, size, size);
  ctx.strokeStyle = "#999";
  ctx.strokeRect(10, 10, size, size);
  return { total, shown };
}

window.MyriadCharts = { lineChart, barChart, pointsView, fmt, PALETTE };
