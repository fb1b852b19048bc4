// gannet studio page: plain JS, no build step. Talks to the JSON API under /api/ (see api.rs).
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  model: null,      // GET /api/checkpoints/{id}
  picks: { a: null, b: null }, // {seed, index, src, label}
  nextPick: "a",
  frame: { busy: false, again: false, url: null },
  run: { timer: null, latestUrl: null },
};

// ---------- requests ----------

async function api(path, options = {}) {
  const r = await fetch(path, options);
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return r;
}

const postJson = (path, body) =>
  api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

function showError(where, err) {
  const box = $(where);
  box.textContent = err ? String(err.message || err) : "";
  box.hidden = !err;
}

// A blob as an object URL, freeing the one it replaces.
function swapUrl(old, blob) {
  if (old) URL.revokeObjectURL(old);
  return URL.createObjectURL(blob);
}

// ---------- checkpoints ----------

async function loadCatalog() {
  const list = await (await api("/api/checkpoints")).json();
  fillSelect($("checkpoint"), list.checkpoints.map((c) => [c.id, c.label]), $("checkpoint").value);
  fillSelect($("run"), list.runs.map((r) => [r.id, r.run_label || r.label]), $("run").value);
  if (!list.checkpoints.length) $("model-info").textContent = "no checkpoint yet";
  return list;
}

function fillSelect(select, options, keep) {
  select.replaceChildren(...options.map(([value, text]) => new Option(text, value)));
  if (options.some(([v]) => v === keep)) select.value = keep;
}

async function selectCheckpoint() {
  const id = $("checkpoint").value;
  if (!id) return;
  showError("error", null);
  $("model-info").textContent = "loading…";
  try {
    state.model = await (await api(`/api/checkpoints/${encodeURIComponent(id)}`)).json();
  } catch (e) {
    state.model = null;
    $("model-info").textContent = "";
    showError("error", e);
    return;
  }
  const m = state.model;
  const size = m.image ? `, ${m.image.resolution}×${m.image.resolution}×${m.image.channels}` : "";
  $("model-info").textContent = `${m.description}, step ${m.step}${size}`;
  for (const panel of document.querySelectorAll("[data-needs]")) {
    panel.hidden = !m.capabilities[panel.dataset.needs];
  }
  const i2i = m.capabilities.translate || m.capabilities.upscale;
  $("translate").textContent = m.capabilities.upscale ? "Upscale" : "Translate";
  $("translate-hint").classList.toggle("error", !i2i);
  $("translate-hint").textContent = i2i
    ? `${m.description}: upload a PNG or JPEG (at most 4 MiB, 1024×1024).`
    : "The selected checkpoint is a GAN (noise to image); translating needs an image-to-image checkpoint (pix2pix, CycleGAN, super-resolution).";
  $("class-field").hidden = !m.capabilities.classes;
  fillSelect($("class"), [["", "all, in turn"], ...m.classes.map((name, i) => [String(i), `${i}: ${name}`])], "");
  clearPicks();
  $("samples").replaceChildren();
  $("prompt-samples").replaceChildren();
  if (m.capabilities.generate) await generate();
  if (m.capabilities.prompt) await drawPrompt();
}

// ---------- text to image ----------

async function drawPrompt(event) {
  if (event) event.preventDefault();
  const body = {
    checkpoint: $("checkpoint").value,
    prompt: $("prompt").value,
    seed: Number($("prompt-seed").value),
    count: Number($("prompt-count").value),
  };
  $("prompt-generate").disabled = true;
  try {
    const res = await (await postJson("/api/prompt", body)).json();
    showError("error", null);
    const tiles = res.images.map((src, index) => {
      const img = new Image();
      img.src = src;
      img.title = `"${body.prompt}", seed ${res.seed}, #${index}`;
      return img;
    });
    $("prompt-samples").replaceChildren(...tiles);
    const link = $("download-prompt");
    link.href = res.grid;
    link.download = `gannet-prompt-seed${res.seed}-step${res.step}.png`;
    link.hidden = false;
  } catch (e) {
    showError("error", e);
  } finally {
    $("prompt-generate").disabled = false;
  }
}

// ---------- generate ----------

function classParam() {
  const v = $("class").value;
  return state.model.capabilities.classes && v !== "" ? Number(v) : null;
}

async function generate(event) {
  if (event) event.preventDefault();
  const body = {
    checkpoint: $("checkpoint").value,
    seed: Number($("seed").value),
    count: Number($("count").value),
    truncation: Number($("truncation").value),
  };
  const cls = classParam();
  if (cls !== null) body.class = cls;
  $("generate").disabled = true;
  try {
    const res = await (await postJson("/api/generate", body)).json();
    showError("error", null);
    showSamples(res);
  } catch (e) {
    showError("error", e);
  } finally {
    $("generate").disabled = false;
  }
}

function showSamples(res) {
  const names = state.model.classes;
  const tiles = res.images.map((src, index) => {
    const img = new Image();
    img.src = src;
    img.dataset.index = index;
    img.dataset.seed = res.seed;
    const label = res.labels ? ` (${names[res.labels[index]]})` : "";
    img.title = `seed ${res.seed}, #${index}${label}`;
    img.addEventListener("click", () => pick(img, label));
    return img;
  });
  $("samples").replaceChildren(...tiles);
  $("samples").dataset.seed = res.seed;
  const link = $("download-grid");
  link.href = res.grid;
  link.download = `gannet-seed${res.seed}-step${res.step}.png`;
  link.hidden = false;
  markPicks();
}

// ---------- interpolation ----------

function pick(img, label) {
  const which = state.nextPick;
  state.picks[which] = { seed: Number(img.dataset.seed), index: Number(img.dataset.index), src: img.src, label };
  state.nextPick = which === "a" ? "b" : "a";
  $(`pick-${which}`).src = img.src;
  $(`pick-${which}-label`).textContent = `${which.toUpperCase()}: seed ${img.dataset.seed}, #${img.dataset.index}${label}`;
  markPicks();
  const ready = state.picks.a && state.picks.b;
  $("t").disabled = !ready;
  if (ready) requestFrame();
}

function markPicks() {
  for (const img of $("samples").children) {
    for (const w of ["a", "b"]) {
      const p = state.picks[w];
      img.classList.toggle(w, !!p && p.seed === Number(img.dataset.seed) && p.index === Number(img.dataset.index));
    }
  }
}

function clearPicks() {
  state.picks = { a: null, b: null };
  state.nextPick = "a";
  for (const w of ["a", "b"]) {
    $(`pick-${w}`).removeAttribute("src");
    $(`pick-${w}-label`).textContent = `${w.toUpperCase()}: pick a sample`;
  }
  $("t").disabled = true;
}

// One frame request at a time; moves of the slider meanwhile collapse into one more request.
async function requestFrame() {
  if (state.frame.busy) { state.frame.again = true; return; }
  state.frame.busy = true;
  const t = Number($("t").value);
  $("t-value").textContent = `t = ${t.toFixed(2)}`;
  const body = {
    checkpoint: $("checkpoint").value,
    a: { seed: state.picks.a.seed, index: state.picks.a.index },
    b: { seed: state.picks.b.seed, index: state.picks.b.index },
    t,
    truncation: Number($("truncation").value),
  };
  const cls = classParam();
  if (cls !== null) body.class = cls;
  try {
    const blob = await (await postJson("/api/interpolate", body)).blob();
    state.frame.url = swapUrl(state.frame.url, blob);
    $("frame").src = state.frame.url;
    $("frame").dataset.t = String(t);
    const link = $("download-frame");
    link.href = state.frame.url;
    link.hidden = false;
    showError("error", null);
  } catch (e) {
    showError("error", e);
  } finally {
    state.frame.busy = false;
    if (state.frame.again) { state.frame.again = false; requestFrame(); }
  }
}

// ---------- style mixing (StyleGAN2 checkpoints only) ----------

async function mix() {
  if (!state.picks.a || !state.picks.b) { showError("error", "pick samples A and B first"); return; }
  const body = {
    checkpoint: $("checkpoint").value,
    coarse: { seed: state.picks.a.seed, index: state.picks.a.index },
    fine: { seed: state.picks.b.seed, index: state.picks.b.index },
    crossover: Number($("crossover").value),
    truncation: Number($("truncation").value),
  };
  try {
    const url = URL.createObjectURL(await (await postJson("/api/style-mix", body)).blob());
    $("mix-output").src = url;
    $("download-mix").href = url;
    $("download-mix").hidden = false;
  } catch (e) {
    showError("error", e);
  }
}

// ---------- translate ----------

async function translate() {
  const file = $("upload").files[0];
  showError("translate-error", null);
  if (!file) { showError("translate-error", "choose a PNG or JPEG file first"); return; }
  $("translate-input").src = URL.createObjectURL(file);
  $("translate").disabled = true;
  try {
    const url = `/api/translate?checkpoint=${encodeURIComponent($("checkpoint").value)}`;
    const blob = await (await api(url, { method: "POST", headers: { "Content-Type": file.type || "application/octet-stream" }, body: file })).blob();
    const out = URL.createObjectURL(blob);
    $("translate-output").src = out;
    $("download-translation").href = out;
    $("download-translation").hidden = false;
  } catch (e) {
    $("translate-output").removeAttribute("src");
    showError("translate-error", e);
  } finally {
    $("translate").disabled = false;
  }
}

// ---------- training view ----------

function parseCsv(text) {
  const [head, ...lines] = text.trim().split("\n");
  const cols = head.split(",");
  return lines.map((l) => Object.fromEntries(l.split(",").map((v, i) => [cols[i], Number(v)]))).filter((r) => Number.isFinite(r.step));
}

const SERIES = [["d_loss", "D loss", "#d62728"], ["g_loss", "G loss", "#1f77b4"]];

function drawChart(rows) {
  const c = $("chart"), g = c.getContext("2d");
  const pad = { l: 52, r: 14, t: 26, b: 34 };
  const w = c.width - pad.l - pad.r, h = c.height - pad.t - pad.b;
  g.clearRect(0, 0, c.width, c.height);
  g.font = "12px system-ui, sans-serif";
  g.fillStyle = "#667085";
  if (!rows.length) { g.fillText("no metrics yet", pad.l, pad.t + 20); return; }
  const xs = rows.map((r) => r.step);
  const ys = rows.flatMap((r) => SERIES.map(([k]) => r[k])).filter(Number.isFinite);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y1 - y0 < 1e-9) { y0 -= 1; y1 += 1; }
  const X = (v) => pad.l + ((v - x0) / (x1 - x0)) * w;
  const Y = (v) => pad.t + (1 - (v - y0) / (y1 - y0)) * h;
  g.strokeStyle = "#d8dde6";
  g.strokeRect(pad.l, pad.t, w, h);
  for (let i = 0; i <= 4; i++) {
    const v = y0 + ((y1 - y0) * i) / 4;
    g.fillText(v.toFixed(2), 4, Y(v) + 4);
  }
  g.fillText(`step ${x0}`, pad.l, c.height - 10);
  g.fillText(`${x1}`, pad.l + w - 30, c.height - 10);
  // At most ~1 point per pixel column: long runs stay cheap to draw.
  const every = Math.max(1, Math.floor(rows.length / w));
  SERIES.forEach(([key, name, color], s) => {
    g.strokeStyle = color;
    g.lineWidth = 1.5;
    g.beginPath();
    rows.forEach((r, i) => {
      if (i % every && i !== rows.length - 1) return;
      if (i === 0) g.moveTo(X(r.step), Y(r[key])); else g.lineTo(X(r.step), Y(r[key]));
    });
    g.stroke();
    g.fillStyle = color;
    g.fillText(name, pad.l + 8 + s * 70, 16);
  });
  $("chart").dataset.points = String(rows.length);
}

async function refreshRun() {
  const id = $("run").value;
  if (!id) { $("run-status").textContent = "no run folder to follow (start gannet serve with --runs DIR)"; drawChart([]); return; }
  try {
    const rows = parseCsv(await (await api(`/api/runs/${encodeURIComponent(id)}/metrics`)).text());
    drawChart(rows);
    const last = rows[rows.length - 1];
    $("run-status").textContent = last
      ? `step ${last.step}, ${last.images_per_s.toFixed(0)} images/s, ${last.elapsed_s.toFixed(0)} s`
      : "no metrics yet";
  } catch (e) {
    drawChart([]);
    $("run-status").textContent = e.message;
  }
  try {
    const blob = await (await api(`/api/runs/${encodeURIComponent(id)}/latest.png`)).blob();
    state.run.latestUrl = swapUrl(state.run.latestUrl, blob);
    $("latest").src = state.run.latestUrl;
  } catch (_) {
    $("latest").removeAttribute("src"); // no samples written yet
  }
}

function follow() {
  clearInterval(state.run.timer);
  refreshRun();
  if ($("live").checked) state.run.timer = setInterval(refreshRun, 2000);
}

// ---------- wiring ----------

function wire() {
  $("checkpoint").addEventListener("change", selectCheckpoint);
  $("generate-form").addEventListener("submit", generate);
  $("prompt-form").addEventListener("submit", drawPrompt);
  $("random-seed").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 1e9); generate(); });
  $("truncation").addEventListener("input", () => { $("truncation-value").textContent = Number($("truncation").value).toFixed(2); });
  $("t").addEventListener("input", requestFrame);
  $("mix").addEventListener("click", mix);
  $("translate").addEventListener("click", translate);
  $("run").addEventListener("change", follow);
  $("live").addEventListener("change", follow);
}

async function start() {
  wire();
  try {
    await loadCatalog();
  } catch (e) {
    showError("error", e);
    return;
  }
  await selectCheckpoint();
  follow();
  document.body.dataset.ready = "1"; // for the browser tests
}

start();
