// The annotation page: loading volumes, views and slices, prompts, propagation progress,
// objects, undo/redo, export and keyboard shortcuts. State lives on the server; this
// keeps what is on screen.

import { api, followJob, loadImage, withToken } from "./api.js";
import { PlanesView } from "./planes.js";
import { SliceViewer } from "./viewer.js";

const $ = (id) => document.getElementById(id);
const IMAGE_CACHE_MAX = 600;
const PALETTE = ["#e6194b", "#3cb44b", "#ffe119", "#0082c8", "#f58230", "#911eb4", "#46f0f0", "#f032e6"];
const WINDOW_LABELS = {
  "ct-lung": "CT lung (W1500 L−600)",
  "ct-abdomen": "CT abdomen (W400 L40)",
  "ct-bone": "CT bone (W1800 L400)",
  "ct-brain": "CT brain (W80 L40)",
  "ct-liver": "CT liver (W150 L30)",
  "ct-he2024": "CT wide (−1000…1000)",
  "mr-percentile": "MR auto-contrast",
};

/** Everything the page holds; exposed as window.sam2volApp for tests and benchmarks. */
const app = {
  info: null,
  sid: null,
  state: null,
  initialized: false,
  view: "axial",
  slices: {},
  window: null,
  active: 1,
  coverage: new Map(),
  maskGen: 0,
  queue: Promise.resolve(),
  jobRunning: false,
  returnTo: null,  // where the view goes back to when the running job ends
  pushed: -1,  // the newest version the change stream announced
  lastJob: null,
  jobsEnded: 0,
  applied: 0,  // states applied so far (a reload whose answer was overtaken drops it)
  progressEvents: 0,
  reached: [],
  checked: [],
  hover: null,
  colorTouched: false,
  linked: null,
  hidden: new Set(),
  locked: new Set(),
  lastPropagationMs: null,
  changes: 0,
  followed: 0,
  stale: 0,
  clicks: [],
  drawn: null,
  pixelToClient: (row, col) => viewer.pixelToClient(row, col),
  overlayShown: () => viewer.overlay,
};
window.sam2volApp = app;

const images = new Map();
const overlays = new Map();
let renderToken = 0;

const viewer = new SliceViewer($("canvas"), {
  onPoint: (row, col, positive, t0) => onPoint(row, col, positive, t0),
  onBox: (r0, c0, r1, c1, t0) => onBox(r0, c0, r1, c1, t0),
  onScroll: (step) => goto(currentSlice() + step),
  onHover: (pixel) => showHover(pixel),
  onStroke: (tool, points, radius, t0) => onStroke(tool, points, radius, t0),
});
const planes = new PlanesView($("planes"), { onWorld: (mm) => onWorld(mm) });
app.planes = planes;
app.cross = {};

// ----- messages ---------------------------------------------------------------------------------
let bannerTimer = null;
function showBanner(text, kind = "error") {
  $("banner-text").textContent = text;
  $("banner").className = kind === "error" ? "" : "info";
  $("banner").hidden = false;
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => { $("banner").hidden = true; }, kind === "error" ? 12000 : 6000);
}
/** Server messages in the page's terms; a 4D volume brings up the channel choice. */
function pageMessage(text) {
  const m = /^(.*): 4D volume with (\d+) channels/.exec(text);
  if (m) {
    $("channel-row").hidden = false;
    $("channel-input").max = String(Number(m[2]) - 1);
    return `${m[1]}: a 4D volume with ${m[2]} channels; choose one (0–${Number(m[2]) - 1}) and press Open channel`;
  }
  return text;
}

/** The channel to ask for, when the channel choice is shown. */
const channel = () => ($("channel-row").hidden ? {} : { channel: Number($("channel-input").value) || 0 });
const report = (err) => showBanner(pageMessage(err && err.message ? err.message : String(err)));
$("banner-close").onclick = () => { $("banner").hidden = true; };

// ----- state ------------------------------------------------------------------------------------
const ready = () => app.state && app.state.status === "ready";
const viewInfo = (name) => (app.state ? app.state.views.find((v) => v.name === name) : null);
const working = () => (app.state ? app.state.axis : "axial");
const currentSlice = () => app.slices[app.view] ?? 0;

function setBodyState() {
  let s = "empty";
  if (app.state) {
    if (app.state.status === "failed") s = "failed";
    else if (app.state.status === "loading") s = "loading";
    else s = app.jobRunning ? "busy" : "ready";
  }
  document.body.dataset.state = s;
  const disabled = s !== "ready";
  const empty = disabled || !app.state.objects.length;
  for (const id of ["propagate", "add-object", "export-log"]) $(id).disabled = disabled;
  for (const id of ["clear-slice", "clear-object", "export", "save"]) $(id).disabled = empty;
  $("undo").disabled = disabled || !app.state.can_undo;
  $("redo").disabled = disabled || !app.state.can_redo;
}

function applyState(state) {
  app.state = state;
  app.applied += 1;
  app.coverage = new Map(state.objects.map((o) => [o.id, new Set(o.covered)]));
  if (state.status === "ready" && !app.initialized) initViews();
  if (state.objects.length && !state.objects.some((o) => o.id === app.active)) {
    app.active = state.objects[0].id;
  }
  const shape = state.shape.length ? ` · ${state.shape.join("×")} · ${state.spacing_mm.join("×")} mm · ${state.orientation}` : "";
  $("source").textContent = `${state.source}${shape} · engine ${state.engine} · segmenting along ${state.axis}`;
  if (state.notice && state.notice !== app.lastNotice) {
    app.lastNotice = state.notice;
    showBanner(state.notice, "info");
  }
  if (state.status === "failed" && state.error) showBanner(state.error);
  if (!app.colorTouched) nextColor();
  renderObjects();
  renderTabs();
  setBodyState();
  drawStrip();
  scheduleLabels();
}

// ----- planes and 3D (NiiVue) -------------------------------------------------------------------
const planesOn = () => PlanesView.available() && $("planes-toggle").checked;
let labelsTimer = null;
function scheduleLabels(force = false) {
  if (!ready() || !planesOn() || !planes.ready) return;
  if (force) planes.labelsRevision = -1;
  clearTimeout(labelsTimer);
  // Not while a job runs: the planes catch up once it ends (uploading a label volume to the GPU
  // mid-propagation would hold up the progress on slow, software-rendered WebGL).
  if (app.jobRunning || (app.state.job && app.state.job.state === "running")) return;
  if (!app.state.objects.length && !planes.labels) return;
  const shown = app.state.objects.map((o) => ({ ...o, hidden: app.hidden.has(o.id) }));
  labelsTimer = setTimeout(() => planes.refreshLabels(app.state.revision, shown), 150);
}

async function openPlanes() {
  if (!planesOn() || !app.sid) return;
  const sid = app.sid;
  try {
    await planes.open(sid);
    if (sid !== app.sid) return;
    scheduleLabels();
    syncPlanes();
  } catch (err) {
    $("planes-wrap").hidden = true;
    showBanner(`the planes and 3D view could not start (${err.message}); the slice view works without it`);
  }
}

/** The user moved the crosshair in the planes: every view goes to that point. */
async function onWorld(mm) {
  if (!ready()) return;
  try {
    const at = await api.get(`sessions/${app.sid}/at-world?x=${mm[0]}&y=${mm[1]}&z=${mm[2]}`);
    for (const [name, v] of Object.entries(at.views)) {
      app.slices[name] = v.slice;
      app.cross[name] = { row: v.row, col: v.col };
    }
    app.linked = at.voxel;
    updateSliceBar();
    drawStrip();
    render();
  } catch (err) { report(err); }
}

/** The slice view moved: the planes' crosshair follows (the last request wins). */
let syncToken = 0;
async function syncPlanes() {
  if (!ready() || !planesOn() || !planes.ready) return;
  const token = ++syncToken;
  const info = viewInfo(app.view);
  const at = app.cross[app.view] || { row: Math.floor(info.rows / 2), col: Math.floor(info.cols / 2) };
  try {
    const w = await api.get(`sessions/${app.sid}/world-of?view=${app.view}&index=${currentSlice()}&row=${at.row}&col=${at.col}`);
    if (token === syncToken) planes.moveTo(w.mm);
  } catch (_) { /* the slice view has already moved on */ }
}

function initViews() {
  const st = app.state;
  app.initialized = true;
  for (const v of st.views) app.slices[v.name] = Math.floor(v.n_slices / 2);
  const prompted = st.prompts.map((p) => p.slice);
  if (prompted.length) app.slices[st.axis] = Math.min(...prompted);
  app.view = st.axis;
  const select = $("window-select");
  select.replaceChildren(...st.windows.map((w) => new Option(WINDOW_LABELS[w] || w, w)));
  app.window = st.default_window;
  select.value = app.window;
  nextColor();
  updateSliceBar();
  openPlanes();
}

// ----- drawing ----------------------------------------------------------------------------------
function imageUrl(view, s) {
  return `api/sessions/${app.sid}/image/${view}/${s}.png?window=${encodeURIComponent(app.window)}`;
}

function cachedImage(url) {
  if (!images.has(url)) {
    const promise = loadImage(url);
    promise.catch(() => images.delete(url));
    images.set(url, promise);
    if (images.size > IMAGE_CACHE_MAX) images.delete(images.keys().next().value);
  }
  return images.get(url);
}

function overlayImage(view, s) {
  const hidden = [...app.hidden].sort((a, b) => a - b).join(",");
  const key = `${view}/${s}/${hidden}`;
  const hit = overlays.get(key);
  if (hit && hit.gen === app.maskGen) return hit.promise;
  const url = hidden
    ? `api/sessions/${app.sid}/overlay-of/${view}/${s}.png?hidden=${hidden}&g=${app.maskGen}`
    : `api/sessions/${app.sid}/overlay/${view}/${s}.png?g=${app.maskGen}`;
  const promise = loadImage(url);
  overlays.set(key, { gen: app.maskGen, promise });
  promise.catch(() => overlays.delete(key));
  return promise;
}

async function render() {
  if (!ready()) return;
  const token = ++renderToken;
  const view = app.view;
  const s = currentSlice();
  const gen = app.maskGen;
  const info = viewInfo(view);
  try {
    const [image, overlay] = await Promise.all([
      cachedImage(imageUrl(view, s)),
      app.state.objects.length ? overlayImage(view, s).catch(() => null) : null,
    ]);
    if (token !== renderToken) return;
    viewer.setView(info);
    viewer.image = image;
    viewer.overlay = overlay;
    viewer.marks = marksFor(view, s);
    viewer.line = lineFor(view);
    viewer.caption = `${view} ${s} / ${info.n_slices - 1}${view === working() ? "" : ` · ${working()} slice ${app.slices[working()]} dashed`}`;
    viewer.draw();
    app.drawn = { view, slice: s, gen };
    if (view === working()) tellView(view, s);
  } catch (err) {
    if (token === renderToken) report(err);
  }
  prefetch(view, s);
}

// The server's engine encodes slices outward from the one shown while the user is idle
// (SAM 2): it is told where the page rests (after a short pause while scrolling).
let viewTimer = null;
let viewTold = null;
function tellView(view, s) {
  clearTimeout(viewTimer);
  const key = `${app.sid}/${view}/${s}`;
  if (key === viewTold) return;
  viewTimer = setTimeout(() => {
    viewTold = key;
    api.post(`sessions/${app.sid}/view`, { view, slice: s }).catch(() => { viewTold = null; });
  }, 150);
}

function prefetch(view, s) {
  const n = viewInfo(view).n_slices;
  for (const d of [1, -1, 2, -2]) {
    if (s + d >= 0 && s + d < n) cachedImage(imageUrl(view, s + d)).catch(() => {});
  }
}

function colorOf(id) {
  const obj = app.state.objects.find((o) => o.id === id);
  return obj ? obj.color : "#ffffff";
}

function marksFor(view, s) {
  if (view !== working()) return [];
  return app.state.prompts
    .filter((p) => p.slice === s)
    .map((p) => ({ points: p.points, box: p.box, color: colorOf(p.object_id) }));
}

function lineFor(view) {
  const info = viewInfo(view);
  if (!info || !info.line) return null;
  const n = viewInfo(working()).n_slices;
  const s = app.slices[working()] ?? 0;
  return { kind: info.line, index: info.line_flipped ? n - 1 - s : s };
}

function drawStrip() {
  const canvas = $("strip");
  const ctx = canvas.getContext("2d");
  const dpr = window.devicePixelRatio || 1;
  const W = canvas.clientWidth;
  const H = canvas.clientHeight;
  canvas.width = Math.round(W * dpr);
  canvas.height = Math.round(H * dpr);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, W, H);
  if (!ready()) return;
  const n = viewInfo(working()).n_slices;
  const w = W / n;
  const objects = app.state.objects;
  const band = (H - 6) / Math.max(1, objects.length);
  objects.forEach((obj, k) => {
    ctx.fillStyle = obj.color;
    for (const s of app.coverage.get(obj.id) || []) ctx.fillRect(s * w, 6 + k * band, Math.max(1, w - 0.5), band);
  });
  ctx.fillStyle = "#ffffff";
  for (const p of app.state.prompts) ctx.fillRect(p.slice * w, 0, Math.max(2, w - 0.5), 5);
  const s = app.slices[working()] ?? 0;
  ctx.strokeStyle = "#ffd60a";
  ctx.lineWidth = 2;
  ctx.strokeRect(s * w + 1, 1, Math.max(2, w - 2), H - 2);
}

function renderTabs() {
  for (const b of document.querySelectorAll("#view-tabs button")) {
    b.setAttribute("aria-pressed", String(b.dataset.view === app.view));
    b.classList.toggle("working", b.dataset.view === working());
  }
  $("view-hint").textContent = !app.state || app.view === working()
    ? ""
    : `prompts go on ${working()} slices; click here to go there`;
}

function renderObjects() {
  const list = $("object-list");
  list.replaceChildren();
  for (const obj of app.state.objects) {
    const li = document.createElement("li");
    li.dataset.id = obj.id;
    li.classList.toggle("active", obj.id === app.active);
    const radio = document.createElement("input");
    radio.type = "radio";
    radio.name = "active-object";
    radio.checked = obj.id === app.active;
    radio.setAttribute("aria-label", `make ${obj.name} active`);
    const swatch = document.createElement("input");
    swatch.type = "color";
    swatch.className = "swatch";
    swatch.value = obj.color;
    swatch.title = `Colour of ${obj.name}`;
    swatch.onclick = (e) => e.stopPropagation();
    swatch.onchange = () => editObject(obj.id, { color: swatch.value });
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = obj.name;
    name.title = "Double-click to rename";
    name.ondblclick = (e) => { e.stopPropagation(); renameObject(obj, name); };
    const clear = document.createElement("button");
    clear.type = "button";
    clear.textContent = "clear";
    clear.title = `Clear ${obj.name} on every slice`;
    clear.onclick = (e) => { e.stopPropagation(); clearObject(obj.id); };
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "×";
    remove.title = `Delete ${obj.name} (Ctrl+Z brings it back)`;
    remove.setAttribute("aria-label", `delete ${obj.name}`);
    remove.onclick = (e) => { e.stopPropagation(); removeObject(obj.id); };
    const stats = document.createElement("div");
    stats.className = "stats";
    stats.textContent = obj.voxels
      ? `${obj.volume_ml.toFixed(2)} ml · ${working()} slices ${obj.first_slice}–${obj.last_slice}`
        + ` (${obj.covered.length} with mask${obj.covered.length === obj.last_slice - obj.first_slice + 1 ? "" : ", gaps"})`
      : "empty: click on it";
    const eye = document.createElement("button");
    eye.type = "button";
    eye.className = "eye";
    eye.textContent = app.hidden.has(obj.id) ? "show" : "hide";
    eye.title = `${app.hidden.has(obj.id) ? "Show" : "Hide"} ${obj.name} in the views`;
    eye.onclick = (e) => { e.stopPropagation(); toggleSet(app.hidden, obj.id); app.maskGen += 1; renderObjects(); render(); scheduleLabels(true); };
    const lock = document.createElement("button");
    lock.type = "button";
    lock.className = "lock";
    lock.textContent = app.locked.has(obj.id) ? "unlock" : "lock";
    lock.title = `${app.locked.has(obj.id) ? "Unlock" : "Lock"} ${obj.name}: a locked object takes no prompts, edits or propagation`;
    lock.onclick = (e) => { e.stopPropagation(); toggleSet(app.locked, obj.id); renderObjects(); };
    li.classList.toggle("locked", app.locked.has(obj.id));
    li.append(radio, swatch, name, clear, eye, lock, remove, stats);
    li.onclick = () => { app.active = obj.id; markActive(); };
    list.append(li);
  }
}

function toggleSet(set, id) {
  if (set.has(id)) set.delete(id); else set.add(id);
}

/** A locked active object refuses prompts and edits (with a message); true if it did. */
function refuseLocked() {
  if (!app.locked.has(app.active)) return false;
  viewer.pending = null;
  viewer.pendingStroke = null;
  viewer.draw();
  const obj = app.state.objects.find((o) => o.id === app.active);
  showBanner(`${obj ? obj.name : "this object"} is locked: unlock it to change it`);
  return true;
}

// Mark the active object in place (re-rendering would swallow a double-click on a name).
function markActive() {
  for (const li of $("object-list").children) {
    const active = Number(li.dataset.id) === app.active;
    li.classList.toggle("active", active);
    li.querySelector("input[type=radio]").checked = active;
  }
}

function nextColor() {
  const n = app.state ? Math.max(0, ...app.state.objects.map((o) => o.id)) : 0;
  $("object-color").value = PALETTE[n % PALETTE.length];
}

function updateSliceBar() {
  const info = viewInfo(app.view);
  const n = info ? info.n_slices : 1;
  const s = currentSlice();
  $("slice-slider").max = String(n - 1);
  $("slice-slider").value = String(s);
  $("slice-input").max = String(n - 1);
  $("slice-input").value = String(s);
  $("slice-count").textContent = `/ ${n - 1}`;
}

function showHover(pixel) {
  app.hover = pixel;
  if (!ready() || !pixel) { $("status-line").textContent = ""; return; }
  $("status-line").textContent = `${app.view} slice ${currentSlice()} · row ${pixel.row}, col ${pixel.col}`;
}

// ----- navigation ------------------------------------------------------------------------------
function goto(s) {
  if (!ready()) return;
  const n = viewInfo(app.view).n_slices;
  const next = Math.min(n - 1, Math.max(0, Math.round(Number(s) || 0)));
  viewer.pending = null;
  app.slices[app.view] = next;
  updateSliceBar();
  drawStrip();
  showHover(app.hover);
  render();
  syncPlanes();
}

function setView(name) {
  if (!ready() || !viewInfo(name)) return;
  app.view = name;
  viewer.pending = null;
  showHover(null);
  renderTabs();
  updateSliceBar();
  render();
  syncPlanes();
}

// ----- changes ----------------------------------------------------------------------------------
/** Apply a change's answer: the new state, and the inline overlay of the slice in view. */
async function applyChange(result, t0) {
  app.maskGen += 1;
  app.changes += 1;
  viewer.pending = null;
  viewer.pendingStroke = null;
  applyState(result.state);
  const ov = app.hidden.size ? null : result.overlay; // with hidden objects: fetched filtered
  if (ov) {
    const promise = loadImage(ov.png);
    overlays.set(`${ov.view}/${ov.slice}/`, { gen: app.maskGen, promise });
    if (ov.view === app.view && ov.slice === currentSlice()) {
      viewer.overlay = await promise;
      viewer.marks = marksFor(app.view, currentSlice());
      viewer.draw();
      app.drawn = { view: app.view, slice: currentSlice(), gen: app.maskGen };
      if (t0 !== null && t0 !== undefined) app.clicks.push(performance.now() - t0);
    }
  }
  await render();
  if (result.state.job && result.state.job.state === "running") await watchJob();
}

/**
 * Send a change; changes run one after another in the order made. ``onAnswer(result)`` runs as
 * the answer arrives, before the page shows it (app.state is still the state before).
 */
function change(path, body, t0 = null, onAnswer = null) {
  const run = async () => {
    try {
      const result = await api.post(`sessions/${app.sid}/${path}`, { ...body, version: version() });
      if (onAnswer) onAnswer(result);
      await applyChange(result, t0);
    } catch (err) {
      viewer.pending = null;
      viewer.pendingStroke = null;
      viewer.draw();
      if (!(await staleChange(err))) report(err);
    }
  };
  app.queue = app.queue.then(run);
  return app.queue;
}

const focus = () => ({ view: app.view, slice: currentSlice() });

// ----- other tabs on the same session -----------------------------------------------------------
// Every change carries the version the page shows; the server refuses it (409) when another tab
// changed the session meanwhile. The page follows the session's change stream, so it shows what
// other tabs do within a moment.
const STALE_MESSAGE = "this session was changed in another tab: the page now shows its latest "
  + "state and your last change was not applied; make it again if it is still needed";
const version = () => (app.state ? app.state.revision : undefined);

/** Reload the session's state and redraw (after another tab's change). */
async function reloadState() {
  const sid = app.sid;
  const applied = app.applied;
  const state = await api.get(`sessions/${sid}`);
  if (sid !== app.sid) return;
  // Another state was shown while this one was on its way (a job's watch ended, say): that one
  // is newer, as reloads wait while a watch runs. An older state could claim a job still runs.
  if (app.applied !== applied) {
    if (app.pushed > app.state.revision) reloadWhenIdle(sid);
    return;
  }
  app.maskGen += 1;
  app.followed += 1;
  applyState(state);
  if (state.job && state.job.state === "running") await watchJob();
  else await render();
}

/** A change refused as stale: reload and say so. True if that was the error. */
async function staleChange(err) {
  if (!err || err.status !== 409 || !/another tab/.test(err.message)) return false;
  try { await reloadState(); } catch (e) { report(e); return true; }
  showBanner(STALE_MESSAGE);
  app.stale += 1;  // (after the message: a test hook)
  return true;
}

let changeStream = null;
/** Follow the session's change stream; a newer version than shown is loaded. */
function followChanges(sid) {
  if (changeStream) changeStream.close();
  changeStream = null;
  if (!sid || typeof EventSource === "undefined") return;
  const source = new EventSource(withToken(`api/sessions/${sid}/changes?since=${version() ?? -1}`));
  changeStream = source;
  source.onmessage = (message) => {
    if (sid !== app.sid) { source.close(); return; }
    const pushed = JSON.parse(message.data);
    if (pushed.deleted) {
      source.close();
      showBanner("this session was deleted in another tab");
      return;
    }
    app.pushed = Math.max(app.pushed, pushed.version);
    // after the changes this page is sending (their answers carry the new version)
    app.queue = app.queue.then(async () => {
      if (sid !== app.sid || watching() || !app.state) return;
      if (pushed.version <= app.state.revision && !pushed.busy) return;
      try { await reloadState(); } catch (_) { /* the next push or a change retries */ }
    });
  };
}

/** Load the session's state after the changes queued now (a push the page let pass). */
function reloadWhenIdle(sid) {
  app.queue = app.queue.then(async () => {
    if (sid !== app.sid || watching() || !app.state || app.pushed <= app.state.revision) return;
    try { await reloadState(); } catch (_) { /* the next push or a change retries */ }
  });
}

async function onPoint(row, col, positive, t0) {
  if (!ready() || app.jobRunning) { viewer.pending = null; viewer.draw(); return; }
  if (refuseLocked()) return;
  if (app.view !== working()) {
    viewer.pending = null;
    try {
      const at = await api.get(`sessions/${app.sid}/locate?view=${app.view}&index=${currentSlice()}&row=${row}&col=${col}`);
      app.slices[working()] = at.slice;
      setView(working());
      showBanner(`went to ${working()} slice ${at.slice}: prompts go on ${working()} slices`, "info");
    } catch (err) { report(err); }
    return;
  }
  return change("prompts", {
    kind: "point", object_id: app.active, view: app.view, slice: currentSlice(), row, col, positive,
  }, t0);
}

function onBox(r0, c0, r1, c1, t0) {
  if (!ready() || app.jobRunning) return;
  if (refuseLocked()) return;
  if (app.view !== working()) {
    showBanner(`boxes go on ${working()} slices: switch to the ${working()} view`);
    return;
  }
  return change("prompts", {
    kind: "box", object_id: app.active, view: app.view, slice: currentSlice(),
    row: r0, col: c0, row2: r1, col2: c1,
  }, t0);
}

function onStroke(tool, points, radius, t0) {
  if (!ready() || app.jobRunning) { viewer.pendingStroke = null; viewer.draw(); return; }
  if (refuseLocked()) return;
  if (app.view !== working()) {
    viewer.pendingStroke = null;
    viewer.draw();
    showBanner(`edits go on ${working()} slices: switch to the ${working()} view`);
    return;
  }
  return change("edit", {
    tool, points, radius, object_id: app.active, view: app.view, slice: currentSlice(),
  }, t0);
}

function setTool(tool) {
  viewer.tool = tool;
  for (const r of document.querySelectorAll("input[name=tool]")) r.checked = r.value === tool;
  $("canvas").dataset.tool = tool;
  viewer.draw();
}

function importLabels(file) {
  if (!ready()) return;
  const q = `filename=${encodeURIComponent(file.name)}&view=${app.view}&slice=${currentSlice()}`;
  const run = async () => {
    try {
      const result = await api.put(`sessions/${app.sid}/import?${q}&version=${version()}`, file);
      await applyChange(result, null);
      const ids = result.state.objects.map((o) => o.id);
      app.active = Math.max(...ids);
      renderObjects();
      showBanner(`imported ${file.name}`, "info");
    } catch (err) { if (!(await staleChange(err))) report(err); }
  };
  app.queue = app.queue.then(run);
  return app.queue;
}

async function nextSliceToCheck() {
  if (!ready()) return;
  try {
    const at = await api.get(`sessions/${app.sid}/next-slice?exclude=${encodeURIComponent(app.checked.join(","))}`);
    if (at.slice === null) { showBanner("every slice looks consistent; nothing to suggest", "info"); return; }
    app.checked.push(at.slice);
    app.view = at.view;
    renderTabs();
    goto(at.slice);
    showBanner(`check ${at.view} slice ${at.slice} (confidence ${at.confidence.toFixed(2)})`, "info");
  } catch (err) { report(err); }
}

function addObject() {
  if (!ready()) return;
  const name = $("object-name").value.trim() || null;
  const color = $("object-color").value;
  // The new object is active as soon as the answer comes (a click right after goes to it).
  const activate = (result) => {
    const before = Math.max(0, ...app.state.objects.map((o) => o.id));
    const created = Math.max(0, ...result.state.objects.map((o) => o.id));
    if (created > before) app.active = created;
  };
  return change("objects", { name, color, ...focus() }, null, activate).then(() => {
    $("object-name").value = "";
    nextColor();
    renderObjects();
  });
}

function editObject(id, changes) {
  if (!ready()) return;
  return change(`objects/${id}/edit`, { ...changes, ...focus() });
}

function removeObject(id) {
  if (!ready()) return;
  return change(`objects/${id}/remove`, focus());
}

// Rename in place: Enter keeps the new name, Escape or leaving the field drops it.
function renameObject(obj, label) {
  const input = document.createElement("input");
  input.type = "text";
  input.className = "rename";
  input.value = obj.name;
  input.maxLength = 60;
  input.setAttribute("aria-label", `new name of ${obj.name}`);
  let done = false;
  const finish = (keep) => {
    if (done) return;
    done = true;
    const name = input.value.trim();
    if (keep && name && name !== obj.name) editObject(obj.id, { name });
    else renderObjects();
  };
  input.onkeydown = (e) => {
    e.stopPropagation();
    if (e.key === "Enter") finish(true);
    else if (e.key === "Escape") finish(false);
  };
  input.onclick = (e) => e.stopPropagation();
  input.onblur = () => finish(false);
  label.replaceWith(input);
  input.focus();
  input.select();
}

function clearObject(id) {
  if (!ready()) return;
  return change("clear", { object_id: id, ...focus() });
}

function clearSlice() {
  if (!ready()) return;
  if (!app.state.objects.some((o) => o.id === app.active)) return;
  return change("clear", { object_id: app.active, only_slice: app.slices[working()] ?? 0, ...focus() });
}

const undo = () => ready() && !app.jobRunning && change("undo", focus());
const redo = () => ready() && !app.jobRunning && change("redo", focus());

// ----- jobs: loading, propagation ---------------------------------------------------------------
function showJob(snap) {
  const bar = $("progress");
  const running = snap && snap.state === "running";
  bar.hidden = !snap || (!running && snap.kind !== "propagate");
  if (snap) {
    bar.max = snap.total || 1;
    if (snap.total) bar.value = snap.done; else bar.removeAttribute("value");
    const count = snap.total ? ` ${snap.done}/${snap.total}` : "";
    const unit = snap.kind === "propagate" ? " slices" : snap.kind === "recover" ? " changes" : "";
    const text = running ? `${snap.message}${count}${count ? unit : ""} · ${snap.seconds.toFixed(1)} s`
      : snap.state === "failed" ? `failed: ${snap.error}` : `${snap.message} (${snap.seconds.toFixed(1)} s)`;
    $("job-text").textContent = text;
  }
  $("stop").hidden = !(running && snap.kind === "propagate");
}

/**
 * Follow the session's running job to its end, then show its final state. One watch at a time:
 * the page can learn of a job twice (the propagate answer and the change stream), and both wait
 * for the same watch. At the end the view goes back to ``app.returnTo`` (a view and slice), if set.
 * The change stream stays out of the way until the watch has shown the final state; a change
 * pushed meanwhile is loaded after it.
 */
let jobWatch = null;  // { sid, done }: the watch running, and its session
const watching = () => jobWatch !== null && jobWatch.sid === app.sid;
function watchJob() {
  if (!watching()) {
    const watch = { sid: app.sid, done: null };
    jobWatch = watch;
    watch.done = followToEnd(watch);
  }
  return jobWatch.done;
}

async function followToEnd(watch) {
  app.jobRunning = true;
  setBodyState();
  const sid = watch.sid;
  let snap = null;
  let state = null;
  let failure = null;
  try {
    for (;;) {
      state = null;
      snap = await followJob(sid, (s) => {
        if (sid !== app.sid) return;  // (the page went to another session)
        app.progressEvents += 1;
        showJob(s);
        if (s.kind === "propagate" && s.slices.length) onSlicesReached(s.slices);
      });
      if (sid !== app.sid) return;  // (startSession reset jobRunning)
      showJob(snap);
      try { state = await api.get(`sessions/${sid}`); } catch (err) { failure = err; }
      if (sid !== app.sid) return;
      // the job's progress could not be read, but it still runs: follow it again
      if (!(state && state.job && state.job.state === "running")) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    if (jobWatch === watch) jobWatch = null;
  }
  // From here to the job's end signals nothing waits: the page is ready, shows the final state
  // and is back on its slice at once.
  app.jobRunning = false;
  if (state) {
    app.maskGen += 1;
    applyState(state);
  } else {
    report(failure);
    reconnect(sid);
  }
  if (snap && snap.state === "failed") report(new Error(snap.error));
  if (snap && snap.state === "cancelled") showBanner(snap.message, "info");
  const back = app.returnTo;
  app.returnTo = null;
  if (back && back.view === app.view) app.slices[app.view] = back.slice;
  updateSliceBar();
  drawStrip();
  app.lastJob = snap;
  app.jobsEnded += 1;  // (a test hook: the job is over for the page)
  if (app.state && app.pushed > app.state.revision) reloadWhenIdle(sid);
  await render();
}

function onSlicesReached(reached) {
  app.maskGen += 1;
  for (const { slice } of reached) app.reached.push(slice);
  for (const { slice, objects } of reached) {
    for (const obj of app.state.objects) {
      const set = app.coverage.get(obj.id) || new Set();
      if (objects.includes(obj.id)) set.add(slice); else set.delete(slice);
      app.coverage.set(obj.id, set);
    }
  }
  const last = reached[reached.length - 1].slice;
  if ($("follow").checked && app.view === working()) {
    app.slices[app.view] = last;
    updateSliceBar();
  }
  drawStrip();
  render();
}

/** After the server was unreachable: try again every 2 s and pick the session up when it answers. */
async function reconnect(sid) {
  if (app.reconnecting) return;
  app.reconnecting = true;
  document.body.dataset.state = "offline";
  while (sid === app.sid) {
    await new Promise((r) => setTimeout(r, 2000));
    try {
      const state = await api.get(`sessions/${sid}`);
      app.reconnecting = false;
      app.maskGen += 1;
      applyState(state);
      showBanner("the server answers again", "info");
      if (state.job && state.job.state === "running") await watchJob();
      else await render();
      return;
    } catch (_) { /* still away */ }
  }
  app.reconnecting = false;
}

async function propagate() {
  if (!ready() || app.jobRunning) return;
  app.reached = [];
  const t0 = performance.now();
  const back = { view: app.view, slice: currentSlice() };
  try {
    const body = { direction: $("direction").value };
    if ($("limit").checked) {
      body.first = Number($("limit-first").value);
      body.last = Number($("limit-last").value);
    }
    if (app.locked.size) {
      body.object_ids = app.state.objects.map((o) => o.id).filter((id) => !app.locked.has(id));
      if (!body.object_ids.length) { showBanner("every object is locked: unlock one to propagate"); return; }
    }
    app.checked = [];
    body.version = version();
    app.returnTo = back;  // (a watch the change stream starts goes back there too)
    const state = await api.post(`sessions/${app.sid}/propagate`, body);
    // The change stream may have shown the job already: a watch follows it (wait for that one),
    // or has followed it to its end (the page shows a newer state than this answer, and the view
    // went back: nothing left to do).
    if (!watching() && state.revision >= version()) applyState(state);
    if (watching() || app.returnTo) await watchJob();
  } catch (err) {
    app.returnTo = null;
    if (!(await staleChange(err))) report(err);
    return;
  }
  app.lastPropagationMs = performance.now() - t0;
}

async function stop() {
  if (!app.sid) return;
  try { await api.post(`sessions/${app.sid}/stop`); } catch (err) { report(err); }
}

// ----- opening volumes --------------------------------------------------------------------------
function resetView() {
  app.state = null;
  app.returnTo = null;
  app.pushed = -1;
  app.jobRunning = false;  // (a watch of the session before ends without touching this one)
  app.initialized = false;
  app.maskGen += 1;
  images.clear();
  overlays.clear();
  viewer.image = null;
  viewer.overlay = null;
  viewer.marks = [];
  viewer.fit();
  viewer.draw();
}

async function startSession(state) {
  resetView();
  app.sid = state.sid;
  app.checked = [];
  app.hidden.clear();
  app.locked.clear();
  history.replaceState(null, "", `#session=${state.sid}`);
  try { localStorage.setItem("sam2vol.lastSession", state.sid); } catch (_) { /* private mode */ }
  applyState(state);
  followChanges(state.sid);
  if (state.job && state.job.state === "running") await watchJob();
  else await render();
}

async function openWith(request) {
  if (app.jobRunning) { showBanner("wait for the running job to finish"); return; }
  app.lastOpen = request;
  $("job-text").textContent = "opening…";
  try {
    await startSession(await request());
  } catch (err) {
    $("job-text").textContent = "";
    report(err);
  }
}

function openSample() {
  $("channel-row").hidden = true;
  const body = { sample: $("sample-select").value, axis: $("axis-select").value };
  return openWith(() => api.post("sessions", body));
}

function openFile() {
  const path = $("file-select").value;
  if (!path) { showBanner("choose a file from the data folder"); return; }
  $("channel-row").hidden = true;
  return openWith(() => api.post("sessions", { path, axis: $("axis-select").value, ...channel() }));
}

function upload(file) {
  const limit = app.info.max_upload_bytes;
  if (file.size > limit) {
    const mb = (n) => `${(n / 1024 / 1024).toFixed(1)} MB`;
    showBanner(`${file.name}: ${mb(file.size)} is over the ${mb(limit)} upload limit`);
    return;
  }
  $("channel-row").hidden = true;
  const q = () => `filename=${encodeURIComponent(file.name)}&axis=${$("axis-select").value}`
    + ("channel" in channel() ? `&channel=${channel().channel}` : "");
  $("job-text").textContent = `uploading ${file.name}…`;
  const route = file.name.toLowerCase().endsWith(".zip") ? "upload-dicom" : "upload";
  return openWith(() => api.put(`${route}?${q()}`, file));
}

async function exportLabels() {
  if (!ready()) return;
  try {
    const format = $("export-format").value;
    const path = format === "seg" ? `sessions/${app.sid}/export-seg` : `sessions/${app.sid}/export?format=${format}`;
    const name = await api.download(path, "labels");
    showBanner(`exported ${name}`, "info");
  } catch (err) { report(err); }
}

async function exportLog() {
  if (!ready()) return;
  try { await api.download(`sessions/${app.sid}/log`, "prompts.json"); } catch (err) { report(err); }
}

async function saveToData() {
  if (!ready()) return;
  try {
    const { saved } = await api.post(`sessions/${app.sid}/save`, { save_as: $("save-name").value });
    showBanner(`saved ${saved} in the data folder`, "info");
    await refreshFiles();
  } catch (err) { report(err); }
}

// ----- keyboard ---------------------------------------------------------------------------------
function onKey(e) {
  const t = e.target;
  const typing = (t instanceof HTMLInputElement && t.type !== "checkbox" && t.type !== "radio")
    || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement;
  if (typing && e.key !== "Escape") return;
  const mod = e.ctrlKey || e.metaKey;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  let handled = true;
  if (mod && key === "z" && !e.shiftKey) undo();
  else if (mod && ((key === "z" && e.shiftKey) || key === "y")) redo();
  else if (mod) handled = false;
  else if (key === "ArrowUp" || key === "ArrowRight") goto(currentSlice() + 1);
  else if (key === "ArrowDown" || key === "ArrowLeft") goto(currentSlice() - 1);
  else if (key === "PageUp") goto(currentSlice() + 10);
  else if (key === "PageDown") goto(currentSlice() - 10);
  else if (key === "Home") goto(0);
  else if (key === "End") goto(1e9);
  else if (key === "1" || key === "2" || key === "3") setView(["axial", "coronal", "sagittal"][Number(key) - 1]);
  else if (key === "o") toggleOverlay();
  else if (key === "v") { $("planes-toggle").checked = !$("planes-toggle").checked; togglePlanes(); }
  else if (key === "p") propagate();
  else if (key === "w") cycleWindow();
  else if (key === "n") $("object-name").focus();
  else if (key === "[" || key === "]") cycleObject(key === "]" ? 1 : -1);
  else if (key === "f") { viewer.fit(); viewer.draw(); }
  else if (key === "Delete") { if (e.shiftKey) clearObject(app.active); else clearSlice(); }
  else if (key === "q" || key === "b" || key === "e" || key === "g") setTool({ q: "prompt", b: "brush", e: "eraser", g: "fill" }[key]);
  else if (key === "k") nextSliceToCheck();
  else if (key === "Escape") { if (viewer.drag) { viewer.drag = null; viewer.draw(); } else stop(); }
  else handled = false;
  if (handled) e.preventDefault();
}

function togglePlanes() {
  $("planes-wrap").hidden = !planesOn();
  viewer.draw();
  if (planesOn() && !planes.ready) openPlanes();
  else scheduleLabels();
}

function toggleOverlay() {
  $("overlay-toggle").checked = !$("overlay-toggle").checked;
  viewer.overlayVisible = $("overlay-toggle").checked;
  viewer.draw();
}

function cycleWindow() {
  if (!ready()) return;
  const windows = app.state.windows;
  app.window = windows[(windows.indexOf(app.window) + 1) % windows.length];
  $("window-select").value = app.window;
  render();
}

function cycleObject(step) {
  if (!ready() || !app.state.objects.length) return;
  const ids = app.state.objects.map((o) => o.id);
  const at = Math.max(0, ids.indexOf(app.active));
  app.active = ids[(at + step + ids.length) % ids.length];
  renderObjects();
}

// ----- wiring -----------------------------------------------------------------------------------
function wire() {
  $("open-sample").onclick = openSample;
  $("open-file").onclick = openFile;
  $("upload-input").onchange = (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (file) upload(file);
  };
  for (const b of document.querySelectorAll("#view-tabs button")) b.onclick = () => setView(b.dataset.view);
  $("slice-slider").oninput = (e) => goto(e.target.value);
  $("slice-input").onchange = (e) => { goto(e.target.value); e.target.blur(); };
  $("slice-prev").onclick = () => goto(currentSlice() - 1);
  $("slice-next").onclick = () => goto(currentSlice() + 1);
  $("strip").onclick = (e) => {
    if (!ready()) return;
    const rect = e.target.getBoundingClientRect();
    const n = viewInfo(working()).n_slices;
    app.view = working();
    renderTabs();
    goto(Math.floor(((e.clientX - rect.left) / rect.width) * n));
  };
  $("window-select").onchange = (e) => { app.window = e.target.value; e.target.blur(); render(); };
  for (const id of ["sample-select", "file-select", "axis-select", "direction", "export-format"]) {
    $(id).addEventListener("change", (e) => e.target.blur());
  }
  $("overlay-toggle").onchange = (e) => { viewer.overlayVisible = e.target.checked; viewer.draw(); };
  $("planes-toggle").onchange = (e) => { togglePlanes(); e.target.blur(); };
  if (!PlanesView.available()) {
    $("planes-toggle").checked = false;
    $("planes-toggle").disabled = true;
    $("planes-wrap").hidden = true;
  } else if (PlanesView.softwareGL()) {
    // WebGL drawn by the CPU: each label upload holds the page for seconds, so start without it.
    $("planes-toggle").checked = false;
    $("planes-toggle").parentElement.title = "this browser draws WebGL without a GPU: slow here";
    $("planes-wrap").hidden = true;
  }
  $("opacity").oninput = (e) => { viewer.opacity = Number(e.target.value); viewer.draw(); };
  $("add-object").onclick = addObject;
  $("object-name").onkeydown = (e) => { if (e.key === "Enter") { e.preventDefault(); addObject(); } };
  $("propagate").onclick = propagate;
  $("stop").onclick = stop;
  $("undo").onclick = undo;
  $("redo").onclick = redo;
  $("clear-slice").onclick = clearSlice;
  $("clear-object").onclick = () => clearObject(app.active);
  $("export").onclick = exportLabels;
  for (const r of document.querySelectorAll("input[name=tool]")) r.onchange = () => { setTool(r.value); r.blur(); };
  $("brush-size").onchange = (e) => { viewer.brushRadius = Math.max(0, Math.min(200, Number(e.target.value) || 0)); e.target.blur(); };
  $("import-input").onchange = (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (file) importLabels(file);
  };
  $("next-slice").onclick = nextSliceToCheck;
  $("open-channel").onclick = () => { if (app.lastOpen) openWith(app.lastOpen); };
  $("limit").onchange = (e) => {
    e.target.blur();
    if (!e.target.checked || !ready()) return;
    if (Number($("limit-first").value) || Number($("limit-last").value)) return;
    // Start from the active object's extent (or the whole stack).
    const obj = app.state.objects.find((o) => o.id === app.active);
    const n = viewInfo(working()).n_slices;
    $("limit-first").value = String(obj && obj.voxels ? obj.first_slice : 0);
    $("limit-last").value = String(obj && obj.voxels ? obj.last_slice : n - 1);
  };
  $("object-color").oninput = () => { app.colorTouched = true; };
  window.addEventListener("hashchange", () => {
    const m = /session=([A-Za-z0-9_-]+)/.exec(location.hash);
    if (m && m[1] !== app.sid) openWith(() => api.get(`sessions/${m[1]}`));
  });
  $("export-log").onclick = exportLog;
  $("save").onclick = saveToData;
  window.addEventListener("keydown", onKey);
  window.addEventListener("resize", drawStrip);
  viewer.opacity = Number($("opacity").value);
}

async function start() {
  wire();
  setBodyState();
  try {
    app.info = await api.get("info");
  } catch (err) { report(err); return; }
  $("engine-name").textContent = `v${app.info.version} · engine: ${app.info.engine}`;
  $("sample-select").replaceChildren(...app.info.samples.map((s) => new Option(s, s)));
  if (app.info.data_dir) {
    $("data-controls").hidden = false;
    $("save-row").hidden = false;
    await refreshFiles();
  }
  const match = /session=([A-Za-z0-9_-]+)/.exec(location.hash);
  let saved = null;
  try { saved = localStorage.getItem("sam2vol.lastSession"); } catch (_) { /* private mode */ }
  if (match) {
    await openWith(() => api.get(`sessions/${match[1]}`));
  } else if (saved) {
    // The last session of this browser comes back if the server still has it.
    try { await startSession(await api.get(`sessions/${saved}`)); } catch (_) {
      try { localStorage.removeItem("sam2vol.lastSession"); } catch (_e) { /* private mode */ }
      $("job-text").textContent = "";
    }
  }
}

async function refreshFiles() {
  if (!app.info || !app.info.data_dir) return;
  try {
    const { files } = await api.get("files");
    const keep = $("file-select").value;
    $("file-select").replaceChildren(...files.map((f) => new Option(f, f)));
    if (files.includes(keep)) $("file-select").value = keep;
  } catch (err) { report(err); }
}

start();
