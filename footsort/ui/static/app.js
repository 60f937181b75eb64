// footsort review page: one key per class, no framework, no build step.
"use strict";

const CSRF = document.querySelector('meta[name="footsort-csrf"]').content;
const POLL_MS = 2000;

let state = null;          // the last /api/state
let tab = "review";
let view = [];             // photos of the current tab, in display order
let cursor = 0;            // index into view
let selected = new Set();  // photo ids
let anchor = null;         // id where a shift-click range starts
let busy = false;          // a move or undo is in flight
const skipped = new Set(); // ids skipped with x: shown last for this visit

const $ = (sel) => document.querySelector(sel);

async function getJSON(path) {
  const r = await fetch(path, {credentials: "same-origin", cache: "no-store"});
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

async function post(path, body) {
  const r = await fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-Footsort-CSRF": CSRF},
    body: JSON.stringify(body || {}),
  });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || `${path}: ${r.status}`);
  return data;
}

let toastTimer = null;
function toast(text) {
  const t = $("#toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 3500);
}

function confClass(c) { return c == null ? "" : c < 0.6 ? "low" : c < 0.8 ? "mid" : "high"; }

function card(p) {
  const fig = document.createElement("figure");
  fig.className = "card";
  fig.dataset.id = p.id;
  const img = document.createElement("img");
  img.decoding = "async";
  img.alt = p.name;
  img.dataset.key = thumbKey(p);
  img.dataset.fallback = `/thumb/${p.id}` + (p.v ? `?v=${p.v}` : "");
  const ready = thumbURL.get(img.dataset.key);
  if (ready) img.src = ready; else watcher.observe(img);
  const cap = document.createElement("figcaption");
  const guess = document.createElement("span");
  guess.textContent = p.label || "?";
  const conf = document.createElement("span");
  conf.className = "conf " + confClass(p.confidence);
  conf.textContent = p.confidence == null ? "–" : p.confidence.toFixed(2);
  conf.title = Object.entries(p.probabilities || {}).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")
    || "no prediction in the journal";
  cap.append(guess, conf);
  const name = document.createElement("div");
  name.className = "name";
  name.textContent = p.name;
  name.title = p.name;
  fig.append(img, cap, name);
  fig.addEventListener("click", (e) => onClick(e, p.id));
  fig.addEventListener("dblclick", () => openViewer());
  return fig;
}

// Thumbnails come in packs (/api/thumbs: a length, a JSON index, the JPEGs back to back): a few requests
// instead of one per photo. The bytes stay in memory while the page is open (keyed by photo id and
// content); an image gets its blob URL only when it comes near the screen, so 500 photos open as fast
// as one screenful.
const thumbData = new Map();  // key -> JPEG bytes, or a URL (placeholder)
const thumbURL = new Map();   // key -> blob URL made from thumbData
const PACK = 200;
const FIRST_PACK = 48;  // about a screenful, asked for alone so the first screen need not wait for 200
let thumbRun = 0;
let packsDone = false;
const near = new Set();
const watcher = new IntersectionObserver((entries) => {
  for (const e of entries) {
    if (e.isIntersecting) { near.add(e.target); show(e.target); } else near.delete(e.target);
  }
}, {rootMargin: "600px"});

function thumbKey(p) { return `${p.id}|${p.v}`; }

function urlFor(key) {
  if (thumbURL.has(key)) return thumbURL.get(key);
  const d = thumbData.get(key);
  if (d === undefined) return null;
  const url = typeof d === "string" ? d : URL.createObjectURL(new Blob([d], {type: "image/jpeg"}));
  thumbURL.set(key, url);
  return url;
}

function show(img) {
  if (!img.isConnected || img.getAttribute("src")) { watcher.unobserve(img); near.delete(img); return; }
  const url = urlFor(img.dataset.key);
  if (url) img.src = url;
  else if (packsDone) img.src = img.dataset.fallback;  // not made yet: /thumb/{id} makes it
  else return;
  watcher.unobserve(img);
  near.delete(img);
}

async function loadThumbs(photos) {
  const run = ++thumbRun;
  packsDone = false;
  const need = photos.filter((p) => p.v && !thumbData.has(thumbKey(p)));
  const packs = [];
  const first = Math.min(FIRST_PACK, need.length);
  if (first) packs.push(need.slice(0, first));
  for (let i = first; i < need.length; i += PACK) packs.push(need.slice(i, i + PACK));
  const fetchPack = async (pack) => {
    try {
      const r = await fetch("/api/thumbs?ids=" + pack.map((p) => `${p.id}.${p.v}`).join(","),
        {credentials: "same-origin"});
      if (!r.ok) return;
      const buf = await r.arrayBuffer();
      const n = new DataView(buf).getUint32(0);
      const index = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n)));
      let off = 4 + n;
      for (const e of index) {
        thumbData.set(`${e.id}|${e.v}`, e.bad ? "/static/placeholder.svg" : new Uint8Array(buf, off, e.len));
        off += e.len;
      }
    } catch (err) {
      // the photos of this pack fall back to one request each
    }
    [...near].forEach(show);
  };
  if (packs.length) await fetchPack(packs[0]);  // the first screen alone first: nothing competes with it
  await Promise.all(packs.slice(1).map(fetchPack));
  if (run !== thumbRun) return;
  packsDone = true;
  [...near].forEach(show);
  performance.mark("footsort:thumbs");
}

function reviewOrder(list) {
  const byId = new Map(list.map((p) => [p.id, p]));
  return [...list.filter((p) => !skipped.has(p.id)), ...[...skipped].filter((id) => byId.has(id)).map((id) => byId.get(id))];
}

function render() {
  if (!state) return;
  const keepId = view[cursor] && view[cursor].id;
  watcher.disconnect();  // the cards are drawn anew below; each new image registers itself
  near.clear();
  $("#count-review").textContent = state.review.length ? `(${state.review.length})` : "";
  $("#undo").disabled = !state.can_undo;
  const keys = Object.entries(state.keys).map(([k, c]) => `<kbd>${k}</kbd> ${escapeHtml(c)}`).join("  ");
  $("#keys").innerHTML = `${keys} · <kbd>←</kbd><kbd>→</kbd><kbd>↑</kbd><kbd>↓</kbd> move · <kbd>space</kbd> large · ` +
    `<kbd>x</kbd> skip · <kbd>u</kbd> undo · <kbd>a</kbd> select all · shift/ctrl-click select`;

  const review = reviewOrder(state.review);
  const grid = $("#grid-review");
  grid.replaceChildren(...review.map(card));
  $("#empty-review").hidden = review.length > 0;

  const recent = $("#panel-recent");
  recent.replaceChildren();
  const recentList = [];
  for (const cls of state.classes) {
    const photos = state.recent[cls] || [];
    const h = document.createElement("h2");
    h.innerHTML = `${escapeHtml(cls)}/ <small>latest ${photos.length} sorted by the model, least sure first</small>`;
    const g = document.createElement("div");
    g.className = "grid";
    g.append(...photos.map(card));
    recent.append(h, g);
    recentList.push(...photos);
  }
  view = tab === "review" ? review : tab === "recent" ? recentList : [];
  loadThumbs(tab === "recent" ? [...recentList, ...review] : [...review, ...recentList]);
  const ids = new Set(view.map((p) => p.id));
  selected = new Set([...selected].filter((id) => ids.has(id)));
  const again = keepId ? view.findIndex((p) => p.id === keepId) : -1;
  cursor = again >= 0 ? again : Math.min(cursor, Math.max(0, view.length - 1));
  paint(false);
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

function cards() {
  const panel = $(`#panel-${tab}`);
  return panel ? [...panel.querySelectorAll(".card")] : [];
}

function paint(scroll = true) {
  const els = cards();
  els.forEach((el, i) => {
    el.classList.toggle("cursor", i === cursor);
    el.classList.toggle("selected", selected.has(el.dataset.id));
  });
  if (scroll && els[cursor]) els[cursor].scrollIntoView({block: "nearest"});
}

function onClick(e, id) {
  const i = view.findIndex((p) => p.id === id);
  if (i < 0) return;
  if (e.shiftKey && anchor) {
    const a = view.findIndex((p) => p.id === anchor);
    const [lo, hi] = a < i ? [a, i] : [i, a];
    for (let k = lo; k <= hi; k++) selected.add(view[k].id);
  } else if (e.ctrlKey || e.metaKey) {
    if (selected.has(id)) selected.delete(id); else selected.add(id);
    anchor = id;
  } else {
    selected.clear();
    anchor = id;
  }
  cursor = i;
  paint();
}

function move(dx, dy) {
  if (!view.length) return;
  if (dy === 0) {
    cursor = Math.max(0, Math.min(view.length - 1, cursor + dx));
  } else {
    const els = cards();
    const here = els[cursor].getBoundingClientRect();
    let best = -1, bestScore = Infinity;
    els.forEach((el, i) => {
      const r = el.getBoundingClientRect();
      const below = dy > 0 ? r.top > here.top + 4 : r.top < here.top - 4;
      if (!below) return;
      const score = Math.abs(r.top - here.top) * 10 + Math.abs(r.left - here.left);
      if (score < bestScore) { bestScore = score; best = i; }
    });
    if (best >= 0) cursor = best;
  }
  paint();
}

async function assign(label) {
  if (busy || !view.length) return;
  const ids = selected.size ? [...selected] : [view[cursor].id];
  busy = true;
  for (const el of cards()) if (ids.includes(el.dataset.id)) el.classList.add("leaving");
  try {
    const {results} = await post("/api/label", {ids, label});
    const moved = results.filter((r) => r.moved_to);
    const problems = results.filter((r) => r.problem);
    selected.clear();
    const first = view.findIndex((p) => ids.includes(p.id));
    cursor = first >= 0 ? first : cursor;
    await refresh();
    cursor = Math.min(cursor, Math.max(0, view.length - 1));
    paint();
    toast(`${moved.length === 1 ? moved[0].name : moved.length + " photos"} → ${label}/` +
      (problems.length ? ` · ${problems.length} not moved: ${problems[0].problem}` : "") + " · u undoes");
  } catch (err) {
    toast(`not moved: ${err.message}`);
    await refresh();
  } finally {
    busy = false;
  }
}

async function undo() {
  if (busy) return;
  busy = true;
  try {
    const {results} = await post("/api/undo");
    if (!results.length) toast("nothing to undo");
    else {
      const back = results.filter((r) => r.moved_to);
      toast(`put back ${back.length} photo(s)` + (back.length ? ` to ${back[0].moved_to}/` : "") +
        (back.length < results.length ? ` · ${results.find((r) => r.problem).problem}` : ""));
      if (back.length && back[0].id) {
        await refresh();
        const i = view.findIndex((p) => p.id === back[0].id);
        if (i >= 0) { cursor = i; paint(); }
        return;
      }
    }
    await refresh();
  } catch (err) {
    toast(`undo failed: ${err.message}`);
  } finally {
    busy = false;
  }
}

function skip() {
  if (!view.length) return;
  const p = view[cursor];
  if (tab === "review") {
    const at = cursor;
    skipped.delete(p.id);
    skipped.add(p.id);  // the latest skipped goes last
    render();
    cursor = Math.min(at, view.length - 1);  // the next photo took its place
    if (view[cursor].id === p.id) cursor = 0;  // it was the last one: start again from the top
    paint();
  } else {
    move(1, 0);
  }
}

function openViewer() {
  const p = view[cursor];
  if (!p) return;
  $("#viewer-img").src = `/photo/${p.id}`;
  $("#viewer-img").alt = p.name;
  const conf = p.confidence == null ? "" : ` ${p.confidence.toFixed(2)}`;
  $("#viewer-caption").textContent = `${p.name} · ${p.folder}/ · model: ${p.label || "?"}${conf}`;
  $("#viewer").hidden = false;
}

function closeViewer() { $("#viewer").hidden = true; $("#viewer-img").removeAttribute("src"); }

function selectAll() {
  if (selected.size === view.length) selected.clear();
  else view.forEach((p) => selected.add(p.id));
  paint(false);
}

document.addEventListener("keydown", (e) => {
  if (e.altKey || e.ctrlKey || e.metaKey) return;
  const viewer = !$("#viewer").hidden;
  if (e.key === "Escape") { if (viewer) closeViewer(); else { selected.clear(); paint(false); } return; }
  if (e.key === " ") { e.preventDefault(); if (viewer) closeViewer(); else openViewer(); return; }
  if (tab === "learning") return;
  if (state && state.keys[e.key]) {
    e.preventDefault();
    if (viewer) closeViewer();
    assign(state.keys[e.key]);
    return;
  }
  const arrows = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]};
  if (arrows[e.key]) {
    e.preventDefault();
    move(...arrows[e.key]);
    if (viewer) openViewer();
    return;
  }
  if (e.key === "u") { undo(); return; }
  if (e.key === "x") { skip(); if (viewer) openViewer(); return; }
  if (e.key === "a") { selectAll(); }
});

$("#viewer").addEventListener("click", closeViewer);
$("#undo").addEventListener("click", undo);
for (const b of document.querySelectorAll(".tab")) {
  b.addEventListener("click", () => setTab(b.dataset.tab));
}

function setTab(name) {
  tab = name;
  for (const b of document.querySelectorAll(".tab")) b.setAttribute("aria-pressed", String(b.dataset.tab === name));
  for (const p of document.querySelectorAll(".panel")) p.hidden = p.id !== `panel-${name}`;
  cursor = 0;
  selected.clear();
  if (name === "learning") loadLearning();
  render();
}

async function loadLearning() {
  const panel = $("#panel-learning");
  try {
    const L = await getJSON("/api/learning");
    const pairs = L.pairs.map((p) => `${p.n} ${escapeHtml(p.from)} → ${escapeHtml(p.to)}`).join(", ");
    const perClass = (rows) => rows.map((c) => `${escapeHtml(c.class)} ${acc(c.before)} → ${acc(c.after)} ` +
      `<small>(${c.n ?? "?"})</small>`).join(" · ");
    const rows = L.versions.map((v) => `<tr class="${v.in_use ? "in-use" : ""}"><td>${v.in_use ? "●" : ""}</td>` +
      `<td>${escapeHtml(v.version)}</td><td>${escapeHtml(v.created || "")}</td><td>${escapeHtml(v.parent || "–")}</td>` +
      `<td>${acc(v.accuracy)}</td><td>${v.validation_n ?? "–"}</td>` +
      `<td>${v.per_class.length ? perClass(v.per_class) : "–"}</td></tr>`).join("");
    panel.innerHTML =
      `<h2>Corrections waiting</h2><p><strong>${L.corrections}</strong> correction(s)` +
      (pairs ? ` (${pairs})` : "") + `, ${L.examples} other labelled photo(s) in the class folders. ` +
      `<code>footsort retrain</code> learns from them; so does this button.</p>` +
      `<h2>Retrain</h2><p><button type="button" id="retrain">Retrain now</button> ` +
      `<button type="button" id="retrain-stop" hidden>Stop</button> <span id="retrain-state"></span></p>` +
      `<pre id="retrain-log" hidden></pre>` + gateHtml(L.gate) +
      `<h2>Model versions</h2><table><thead><tr><th></th><th>version</th><th>created</th><th>parent</th>` +
      `<th>held-out accuracy</th><th>held-out photos</th><th>per class: before → after (photos)</th></tr></thead>` +
      `<tbody>${rows}</tbody></table>` +
      `<button type="button" id="rollback">Roll back to the previous model</button>`;
    $("#retrain").addEventListener("click", async () => {
      try {
        await post("/api/retrain/start");
        watchRetrain();
      } catch (err) {
        toast(err.message);
      }
    });
    $("#retrain-stop").addEventListener("click", () => post("/api/retrain/stop").catch((err) => toast(err.message)));
    watchRetrain();
    $("#rollback").addEventListener("click", async () => {
      if (!confirm("Go back to the model that was in use before the current one?")) return;
      try {
        const r = await post("/api/models/rollback");
        toast(`model ${r.now} is now in use (was ${r.was})`);
      } catch (err) {
        toast(err.message);
      }
      loadLearning();
    });
  } catch (err) {
    panel.textContent = `could not read the learning state: ${err.message}`;
  }
}

function acc(x) { return x == null ? "–" : x.toFixed(4); }

function change(before, after) {
  if (before == null || after == null) return "";
  const d = after - before;
  return `<span class="${d > 0 ? "better" : d < 0 ? "worse" : ""}">${d > 0 ? "+" : ""}${d.toFixed(4)}</span>`;
}

// The gate's verdict on the latest retrain (promoted or not): the current and the new model on the same
// held-out photos, overall and per class, with how many photos each number rests on.
function gateHtml(g) {
  if (!g) return "";
  const verdict = g.promoted ? "promoted: now in use" : g.stored ? "not promoted (kept as a version)" : "not promoted";
  const row = (name, n, before, after, cls = "") => `<tr class="${cls}"><td>${name}</td><td>${n ?? "–"}</td>` +
    `<td>${acc(before)}</td><td>${acc(after)}</td><td>${change(before, after)}</td></tr>`;
  const classes = (g.per_class || []).map((c) => row(escapeHtml(c.class), c.n, c.before, c.after)).join("");
  return `<h2 id="gate">Latest retrain <small>${escapeHtml(g.created || "")} · ${escapeHtml(g.version || "")} ` +
    `from ${escapeHtml(g.parent || "default")}</small></h2>` +
    `<p class="verdict ${g.promoted ? "better" : ""}"><strong>${verdict}</strong></p>` +
    `<table class="gate"><thead><tr><th>held-out photos of</th><th>photos</th><th>current model (before)</th>` +
    `<th>new model (after)</th><th>change</th></tr></thead><tbody>${classes}` +
    row("all classes", g.validation_n, g.parent_val_accuracy, g.val_accuracy, "total") + `</tbody></table>` +
    `<p class="reason">${escapeHtml(g.reason || "")}</p>`;
}

let retrainTimer = null;
async function watchRetrain() {
  clearTimeout(retrainTimer);
  if (tab !== "learning" || !$("#retrain")) return;
  let st;
  try { st = await getJSON("/api/retrain"); } catch (err) { toast(err.message); return; }
  const log = $("#retrain-log");
  log.hidden = !st.lines.length;
  log.textContent = st.lines.slice(-40).join("\n");
  $("#retrain").disabled = st.running;
  $("#retrain-stop").hidden = !st.running;
  $("#retrain-state").textContent = st.running ? "running…" : st.exit_code == null ? "" :
    st.exit_code === 0 ? "finished" : `stopped with exit code ${st.exit_code}`;
  if (st.running) retrainTimer = setTimeout(watchRetrain, 1000);
  else if (wasRunning) { wasRunning = false; loadLearning(); }
  if (st.running) wasRunning = true;
}
let wasRunning = false;

async function refresh() {
  state = await getJSON("/api/state");
  performance.mark("footsort:state");
  lastSignature = state.signature;
  render();
  performance.mark("footsort:drawn");
}

let lastSignature = "";
async function poll() {
  try {
    if (!busy && !document.hidden) {
      const {signature} = await getJSON("/api/signature");
      if (signature !== lastSignature && !busy) await refresh();
    }
  } catch (err) {
    toast(`lost the server: ${err.message}`);
  }
  setTimeout(poll, POLL_MS);
}

// For measuring (bench/bench_ui.py): the mark "footsort:first-screen" is set once the first listing is drawn and
// every thumbnail on the first screen is shown (or failed); like every mark, its time counts from navigation start.
function markFirstScreen(started = performance.now()) {
  const imgs = [...document.querySelectorAll("#grid-review img")]
    .filter((i) => i.getBoundingClientRect().top < innerHeight);
  if (imgs.every((i) => i.getAttribute("src") && i.complete)) performance.mark("footsort:first-screen");
  else if (performance.now() - started < 60000) requestAnimationFrame(() => markFirstScreen(started));
}

refresh().then(() => { markFirstScreen(); setTimeout(poll, POLL_MS); }, (err) => toast(err.message));
