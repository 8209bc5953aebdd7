// A line chart on a canvas, small enough to read in one sitting: the
// dashboard needs two charts of a few hundred points, which does not
// justify a charting library to vendor, pin and keep up to date.
"use strict";

// drawChart draws spec's series into canvas at the canvas's CSS size and
// the screen's pixel density, and records the number of points drawn in
// canvas.dataset.points. spec: {series: [{name, color, points: [[x, y]],
// dots}], x: {min, max, label}, y: {min, max, label, format}, empty}.
function drawChart(canvas, spec) {
  const dpr = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth, cssH = canvas.clientHeight;
  if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);
  const css = getComputedStyle(document.documentElement);
  const ink = css.getPropertyValue("--ink").trim();
  const muted = css.getPropertyValue("--muted").trim();
  const line = css.getPropertyValue("--line").trim();
  ctx.font = "12px system-ui, sans-serif";

  const all = spec.series.flatMap((s) => s.points);
  canvas.dataset.points = all.length;
  const box = { left: 52, right: cssW - 22, top: 28, bottom: cssH - 36 };
  if (all.length === 0) {
    ctx.fillStyle = muted;
    ctx.textAlign = "center";
    ctx.fillText(spec.empty || "no data yet", cssW / 2, cssH / 2);
    return;
  }
  let yMin = spec.y.min, yMax = spec.y.max;
  if (yMin === undefined) yMin = Math.min(...all.map((p) => p[1]));
  if (yMax === undefined) yMax = Math.max(...all.map((p) => p[1]));
  if (yMax - yMin < 1e-9) yMax = yMin + 1;
  const xMin = spec.x.min, xMax = Math.max(spec.x.max, xMin + 1e-9);
  const yTicks = ticks(yMin, yMax, 5);
  yMin = Math.min(yMin, yTicks[0]);
  yMax = Math.max(yMax, yTicks[yTicks.length - 1]);
  const X = (x) => box.left + (x - xMin) / (xMax - xMin) * (box.right - box.left);
  const Y = (y) => box.bottom - (y - yMin) / (yMax - yMin) * (box.bottom - box.top);

  // Grid and axis labels.
  ctx.lineWidth = 1;
  ctx.strokeStyle = line;
  ctx.fillStyle = muted;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const t of yTicks) {
    const y = Math.round(Y(t)) + 0.5;
    ctx.beginPath(); ctx.moveTo(box.left, y); ctx.lineTo(box.right, y); ctx.stroke();
    ctx.fillText(spec.y.format ? spec.y.format(t) : String(+t.toFixed(4)), box.left - 6, y);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const t of ticks(xMin, xMax, 8).filter((t) => t >= xMin && t <= xMax && Number.isInteger(t))) {
    const x = Math.round(X(t)) + 0.5;
    ctx.beginPath(); ctx.moveTo(x, box.bottom); ctx.lineTo(x, box.bottom + 4); ctx.stroke();
    // A label at the right end stays inside the canvas.
    const half = ctx.measureText(String(t)).width / 2;
    ctx.fillText(String(t), Math.min(x, cssW - half - 2), box.bottom + 7);
  }
  ctx.fillText(spec.x.label, (box.left + box.right) / 2, box.bottom + 21);
  ctx.strokeStyle = muted;
  ctx.beginPath(); ctx.moveTo(box.left, box.top); ctx.lineTo(box.left, box.bottom); ctx.lineTo(box.right, box.bottom); ctx.stroke();

  // Series, clipped to the plot so a spike cannot draw over the labels.
  ctx.save();
  ctx.beginPath(); ctx.rect(box.left, box.top - 4, box.right - box.left + 4, box.bottom - box.top + 4); ctx.clip();
  for (const s of spec.series) {
    ctx.strokeStyle = ctx.fillStyle = s.color;
    ctx.lineWidth = s.dots ? 2 : 1.5;
    ctx.beginPath();
    s.points.forEach((p, i) => (i ? ctx.lineTo(X(p[0]), Y(p[1])) : ctx.moveTo(X(p[0]), Y(p[1]))));
    ctx.stroke();
    // Dots mark the points while they are few enough to tell apart.
    if (s.dots && s.points.length <= 60 || s.points.length === 1) {
      for (const p of s.points) { ctx.beginPath(); ctx.arc(X(p[0]), Y(p[1]), 3, 0, 2 * Math.PI); ctx.fill(); }
    }
  }
  ctx.restore();

  // Legend along the top.
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  let lx = box.left;
  for (const s of spec.series) {
    ctx.fillStyle = s.color;
    ctx.fillRect(lx, 10, 14, 3);
    ctx.fillStyle = ink;
    ctx.fillText(s.name, lx + 19, 12);
    lx += 19 + ctx.measureText(s.name).width + 18;
  }
}

// ticks returns about n round values covering [lo, hi]: steps of 1, 2 or 5
// times a power of ten.
function ticks(lo, hi, n) {
  const raw = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let t = Math.floor(lo / step) * step; t <= hi + step * 0.5; t += step) {
    out.push(+t.toFixed(10));
    if (t >= hi) break;
  }
  return out;
}
