// The drawing page: strokes on a canvas (mouse, pen and touch through
// pointer events), sent as a PNG to /api/predict a moment after the pen
// stops, so the server prepares them exactly as `mnist-cl predict` prepares
// a file. The answer fills the bars and the 28x28 image the network saw.
"use strict";

(function () {
  const pad = document.getElementById("pad");
  const ctx = pad.getContext("2d");
  const seen = document.getElementById("seen").getContext("2d");
  const digitEl = document.getElementById("digit");
  const confEl = document.getElementById("confidence");
  const statusEl = document.getElementById("status");
  const bars = buildBars(document.getElementById("bars"));

  // A pen about as wide, next to the pad, as MNIST's strokes are next to
  // its 28-pixel field.
  const penWidth = 20;
  // Time after the last movement before asking: long enough not to send
  // every few pixels of a stroke, short enough to feel live.
  const debounceMs = 200;

  let drawing = false;
  let inked = false;
  let timer = 0;
  let sent = 0; // the number of the latest request; older answers are dropped

  function clearPad() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    inked = false;
  }

  function point(ev) {
    const r = pad.getBoundingClientRect();
    return [(ev.clientX - r.left) * pad.width / r.width, (ev.clientY - r.top) * pad.height / r.height];
  }

  function dot(x, y) {
    ctx.beginPath();
    ctx.arc(x, y, penWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
  }

  let last = null;
  function strokeTo(ev) {
    const [x, y] = point(ev);
    ctx.beginPath();
    ctx.moveTo(last[0], last[1]);
    ctx.lineTo(x, y);
    ctx.stroke();
    last = [x, y];
  }

  pad.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0) return;
    ev.preventDefault();
    pad.setPointerCapture(ev.pointerId);
    drawing = true;
    inked = true;
    ctx.strokeStyle = ctx.fillStyle = "#000";
    ctx.lineWidth = penWidth;
    ctx.lineCap = ctx.lineJoin = "round";
    last = point(ev);
    dot(last[0], last[1]);
    schedule();
  });
  pad.addEventListener("pointermove", (ev) => {
    if (!drawing) return;
    // Coalesced events keep a fast stroke smooth where the browser
    // delivers fewer moves than the pen made.
    const evs = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [];
    for (const e of evs.length ? evs : [ev]) strokeTo(e);
    schedule();
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    schedule();
  };
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);

  document.getElementById("clear").addEventListener("click", () => {
    clearPad();
    sent++;
    clearTimeout(timer);
    show(null);
    status("Draw to start.");
    pad.dataset.state = "idle";
  });

  document.getElementById("upload").addEventListener("change", async (ev) => {
    const file = ev.target.files[0];
    ev.target.value = "";
    if (!file) return;
    clearTimeout(timer);
    pad.dataset.state = "waiting";
    // The file itself is sent, not the pad, so the answer is predict's
    // for that file; the pad shows it so one can draw over it.
    try {
      const bmp = await createImageBitmap(file);
      clearPad();
      const s = Math.min(pad.width / bmp.width, pad.height / bmp.height);
      const w = bmp.width * s, h = bmp.height * s;
      ctx.drawImage(bmp, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
      inked = true;
    } catch (e) {
      // The browser cannot show it; the server may still read it, or say why not.
      clearPad();
    }
    ask(file);
  });

  // pad.dataset.state is "waiting" from the first stroke until the answer
  // to the latest drawing has come, then "idle": what a test waits for.
  function schedule() {
    clearTimeout(timer);
    pad.dataset.state = "waiting";
    timer = setTimeout(() => {
      if (!inked) { pad.dataset.state = "idle"; return; }
      pad.toBlob((blob) => { if (blob) ask(blob); else pad.dataset.state = "idle"; }, "image/png");
    }, debounceMs);
  }

  async function ask(body) {
    const id = ++sent;
    pad.dataset.state = "waiting";
    status("Thinking…");
    let res, text;
    try {
      res = await fetch("/api/predict", { method: "POST", body: body,
        headers: { "Content-Type": body.type || "application/octet-stream" } });
      text = await res.text();
    } catch (e) {
      if (id === sent) {
        pad.dataset.state = "idle";
        status("The server cannot be reached: " + e.message, true);
      }
      return;
    }
    if (id !== sent) return;
    pad.dataset.state = "idle";
    if (!res.ok) {
      show(null);
      status(text.trim() || res.statusText, true);
      return;
    }
    const a = JSON.parse(text);
    show(a);
    status("Answered in " + a.millis.toFixed(1) + " ms.");
  }

  function status(text, isError) {
    statusEl.textContent = text;
    statusEl.classList.toggle("error", !!isError);
  }

  function buildBars(list) {
    const rows = [];
    for (let d = 0; d < 10; d++) {
      const li = document.createElement("li");
      const label = document.createElement("span");
      label.textContent = d;
      const track = document.createElement("span");
      track.className = "track";
      const fill = document.createElement("span");
      fill.className = "fill";
      track.appendChild(fill);
      const pct = document.createElement("span");
      pct.className = "pct";
      li.append(label, track, pct);
      list.appendChild(li);
      rows.push({ li: li, fill: fill, pct: pct });
    }
    return rows;
  }

  // show fills the answer, the bars and the seen image, or empties them.
  function show(a) {
    digitEl.textContent = a ? a.digit : "–";
    digitEl.dataset.digit = a ? a.digit : "";
    confEl.textContent = a ? (100 * a.probabilities[a.digit]).toFixed(1) + "% sure" : "";
    bars.forEach((b, d) => {
      const p = a ? a.probabilities[d] : 0;
      b.fill.style.width = (100 * p).toFixed(1) + "%";
      b.pct.textContent = a ? (100 * p).toFixed(1) + "%" : "";
      b.li.classList.toggle("best", !!a && d === a.digit);
    });
    const img = seen.createImageData(28, 28);
    for (let i = 0; i < 28 * 28; i++) {
      const v = a ? a.pixels[i] : 0;
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
      img.data[4 * i + 3] = 255;
    }
    seen.putImageData(img, 0, 0);
  }

  clearPad();
  show(null);
  pad.dataset.state = "idle";
})();
