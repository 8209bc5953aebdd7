// The training dashboard: one Server-Sent Events stream from /api/events,
// each event the run's whole state, drawn into the facts, the figures, two
// charts and, at the end, the test result and its confusion matrix.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  let state = null;

  const pct = (v) => (100 * v).toFixed(2) + "%";

  function duration(s) {
    if (!isFinite(s)) return "–";
    s = Math.round(s);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0") + " s";
    return Math.floor(s / 3600) + " h " + String(Math.floor(s / 60) % 60).padStart(2, "0") + " min";
  }

  function render(st) {
    state = st;
    const statusEl = $("status");
    statusEl.textContent = st.status;
    statusEl.className = "pill " + st.status;
    $("message").hidden = !st.message;
    $("message").textContent = st.message || "";
    $("source").textContent = st.source || "–";
    $("device").textContent = st.device || "–";
    $("network").textContent = st.network || "–";
    renderSettings(st.settings || []);
    renderFigures(st);
    renderCharts(st);
    renderResult(st.test);
  }

  function renderSettings(settings) {
    const dl = $("settings");
    dl.replaceChildren(...settings.map((s) => {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = s.name;
      dd.textContent = s.value;
      div.append(dt, dd);
      return div;
    }));
  }

  function renderFigures(st) {
    const done = st.done.length;
    const now = st.now;
    const epoch = now ? now.epoch : done;
    $("epoch").textContent = epoch ? epoch + " / " + (st.epochs || "?") : "–";
    $("epoch-progress").value = now && now.steps ? now.step / now.steps : (done ? 1 : 0);
    const rate = now ? now.images_per_sec : (done ? st.done[done - 1].images_per_sec : 0);
    $("rate").textContent = rate ? Math.round(rate).toLocaleString("en") : "–";
    $("left").textContent = st.status === "finished" ? "done" : (now ? duration(now.seconds_left) : "–");
    $("val").textContent = done ? pct(st.done[done - 1].val_accuracy) : "–";
  }

  function renderCharts(st) {
    const css = getComputedStyle(document.documentElement);
    const color = (n) => css.getPropertyValue("--series-" + n).trim();
    // The axis reaches the last point, rounded up to a whole epoch, not
    // the planned end: a long run's first epochs would be a sliver.
    const last = Math.max(0, ...st.intervals.map((p) => p.epoch), ...st.done.map((e) => e.epoch));
    const xMax = Math.max(1, Math.ceil(last - 1e-9));
    drawChart($("loss-chart"), {
      series: [
        { name: st.live ? "training (per interval)" : "training (per epoch)", color: color(1),
          points: st.intervals.map((p) => [p.epoch, p.loss]) },
        { name: "validation", color: color(2), dots: true, points: st.done.map((e) => [e.epoch, e.val_loss]) },
      ],
      x: { min: 0, max: xMax, label: "epoch" },
      y: { min: 0, label: "loss" },
      empty: "waiting for the first report",
    });
    drawChart($("acc-chart"), {
      series: [
        { name: "training", color: color(1), dots: true, points: st.done.map((e) => [e.epoch, e.train_accuracy]) },
        { name: "validation", color: color(2), dots: true, points: st.done.map((e) => [e.epoch, e.val_accuracy]) },
      ],
      x: { min: 0, max: xMax, label: "epoch" },
      y: { max: 1, label: "accuracy", format: (v) => (100 * v).toFixed(0) + "%" },
      empty: "waiting for the first epoch",
    });
  }

  function renderResult(test) {
    $("result").hidden = !test;
    if (!test) return;
    $("test-acc").textContent = pct(test.accuracy);
    $("test-loss").textContent = "loss " + test.loss.toFixed(4);
    const m = test.confusion;
    $("confusion-wrap").hidden = !m;
    $("no-confusion").hidden = !!m;
    if (m) renderConfusion(m);
  }

  // renderConfusion shades each cell by its share of the true digit's row,
  // so errors stand out whatever the class sizes.
  function renderConfusion(m) {
    const table = $("confusion");
    const head = document.createElement("tr");
    head.appendChild(document.createElement("th"));
    m.forEach((_, c) => { const th = document.createElement("th"); th.textContent = c; head.appendChild(th); });
    const rows = m.map((row, r) => {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.textContent = r;
      tr.appendChild(th);
      const total = row.reduce((a, b) => a + b, 0) || 1;
      row.forEach((v, c) => {
        const td = document.createElement("td");
        td.textContent = v;
        const share = v / total;
        if (r === c) {
          td.className = "diag";
          td.style.background = "color-mix(in srgb, var(--good) " + Math.round(15 + 45 * share) + "%, transparent)";
        } else if (v > 0) {
          td.style.background = "color-mix(in srgb, var(--bad) " + Math.min(70, Math.round(10 + 300 * share)) + "%, transparent)";
        }
        tr.appendChild(td);
      });
      return tr;
    });
    table.replaceChildren(head, ...rows);
  }

  const events = new EventSource("/api/events");
  events.addEventListener("state", (ev) => render(JSON.parse(ev.data)));
  events.addEventListener("error", () => {
    // EventSource retries by itself; say so meanwhile.
    const statusEl = $("status");
    statusEl.textContent = "disconnected, retrying…";
    statusEl.className = "pill disconnected";
  });
  window.addEventListener("resize", () => { if (state) renderCharts(state); });
})();
