// The video wall: one tile per camera with its latest annotated frame, health and rate;
// a click enlarges a camera in an overlay.
//
// Frames are fetched, not streamed: each visible tile asks for frame.jpg about twice
// a second, and only once the previous request finished (a slow link never piles up
// requests). Tiles scrolled out of sight, a hidden view or a hidden browser tab fetch
// nothing: with 75 cameras that is most of the load saved.

import { serverNow } from "./alerts.js";
import { apiUrl } from "./api.js";
import { duration, h, kvTable, localTime, num, setChildren, words } from "./dom.js";
import { openModal } from "./modal.js";
import { every, onEnd, session } from "./session.js";

const STALE_AFTER_S = 10; // an online camera without a new frame for this long is flagged

let grid = null;
let wallVisible = false;
let observer = null;
const tiles = new Map(); // camera id -> view
let cameras = new Map(); // camera id -> latest camera object
let enlarged = null; // the view in the camera overlay, with {stats}

/** Wire the wall into its container for a new session. */
export function mountWall(container) {
  grid = container;
  tiles.clear();
  cameras = new Map();
  grid.replaceChildren(emptyNote());
  observer = new IntersectionObserver((entries) => {
    entries.forEach((e) => {
      const view = tiles.get(e.target.dataset.cameraId);
      if (view) view.onScreen = e.isIntersecting;
    });
  }, { rootMargin: "200px" });
  every(Math.round(1000 / refreshRate()), tick);
  onEnd(() => {
    observer.disconnect();
    tiles.forEach(forget);
    tiles.clear();
    if (enlarged) forget(enlarged);
    enlarged = null;
  });
}

// About twice a second, never faster than the run writes frames (settings.live_fps).
function refreshRate() {
  const fps = Number(session.settings && session.settings.live_fps);
  return Number.isFinite(fps) && fps > 0 ? Math.min(2, Math.max(0.2, fps)) : 2;
}

/** Start or stop frame refreshing for the wall (the view is shown or hidden). */
export function setWallVisible(visible) {
  wallVisible = visible;
}

function emptyNote() {
  return h("p", { class: "muted empty-wall" }, "No camera is reporting (is a run active?)");
}

/** Update the tiles from a camera list (push or GET /api/cameras). */
export function setCameras(list) {
  if (!grid) return;
  const valid = (Array.isArray(list) ? list : []).filter((c) => c && c.id !== undefined && c.id !== null);
  cameras = new Map(valid.map((c) => [String(c.id), c]));
  for (const [id, view] of tiles) {
    if (!cameras.has(id)) {
      view.el.remove();
      forget(view);
      tiles.delete(id);
    }
  }
  const ordered = valid.map((c) => tileFor(c));
  if (!ordered.length) setChildren(grid, emptyNote());
  else ordered.forEach((el, i) => grid.children[i] !== el && grid.insertBefore(el, grid.children[i] || null));
  while (grid.children.length > Math.max(ordered.length, 1)) grid.lastElementChild.remove();
  if (enlarged && cameras.has(enlarged.id)) fillStats(enlarged, cameras.get(enlarged.id));
}

function tileFor(camera) {
  const id = String(camera.id);
  let view = tiles.get(id);
  if (!view) {
    view = newView(id);
    view.caption = h("figcaption", {});
    view.el = h("figure", { class: "tile", "data-testid": "camera-tile", "data-camera-id": id,
      title: "Click to enlarge", onclick: () => enlarge(id) }, view.frame, view.caption);
    tiles.set(id, view);
    observer.observe(view.el);
  }
  fillCaption(view, camera);
  return view.el;
}

// A frame view: the <img> and its loading state; tiles and the overlay each have one.
function newView(id) {
  const img = h("img", { alt: `Camera ${id}`, decoding: "async" });
  const frame = h("div", { class: "frame" }, img, h("div", { class: "no-frame" }, "No frame yet"));
  return { id, img, frame, el: null, onScreen: false, busy: false, nextAt: 0, failures: 0, objectUrl: null,
    gone: false };
}

function fillCaption(view, camera) {
  const health = camera.health || "unknown";
  view.el.className = `tile health-${health}`;
  setChildren(view.caption,
    h("div", { class: "tile-head" },
      h("span", { class: "cam-id" }, String(camera.id)),
      camera.name && camera.name !== camera.id ? h("span", { class: "cam-name" }, camera.name) : null,
      healthBadge(health),
      h("span", { class: "fps" }, typeof camera.fps === "number" ? `${num(camera.fps, 1)} fps` : "")),
    camera.error ? h("div", { class: "cam-error", title: String(camera.error) }, String(camera.error)) : null,
    staleNote(camera), recordingNote(camera));
}

// Recording trouble is shown on the tile: a segment lost (disk full, write error) or frames dropped.
function recordingNote(camera) {
  const rec = camera.recording;
  if (!rec || typeof rec !== "object" || !(rec.failed > 0 || rec.dropped > 0)) return null;
  return h("div", { class: "cam-error", "data-testid": "recording-trouble" },
    `recording: ${num(rec.failed, 0)} segment(s) lost, ${num(rec.dropped, 0)} frame(s) not recorded`);
}

function healthBadge(health) {
  return h("span", { class: `badge health-badge health-${health}`, "data-testid": "camera-health" },
    health === "unknown" ? "no run" : words(health));
}

function staleNote(camera) {
  const age = typeof camera.last_frame_at === "number" ? serverNow() - camera.last_frame_at : null;
  if (camera.health !== "online" || age === null || age < STALE_AFTER_S) return null;
  return h("div", { class: "cam-stale" }, `no new frame for ${duration(age)}`);
}

function enlarge(id) {
  if (enlarged) return;
  const view = newView(id);
  view.stats = h("div", { class: "camera-stats" });
  view.head = h("h2", {});
  const content = h("div", { class: "camera-modal" }, view.head, view.frame, view.stats);
  enlarged = view;
  openModal(content, {
    testid: "camera-modal", label: `Camera ${id}`, wide: true,
    onClose: () => {
      forget(view);
      enlarged = null;
    },
  });
  if (cameras.has(id)) fillStats(view, cameras.get(id));
}

function fillStats(view, camera) {
  setChildren(view.head, `Camera ${camera.id}`, camera.name && camera.name !== camera.id ? ` — ${camera.name}` : "",
    " ", healthBadge(camera.health || "unknown"));
  setChildren(view.stats, kvTable({
    fps: camera.fps, frames: camera.frames, dropped: camera.dropped, reconnects: camera.reconnects,
    tracks: camera.tracks, last_frame: localTime(camera.last_frame_at), error: camera.error || null,
    recorded_segments: camera.recording ? camera.recording.segments : null,
    recording_lost_segments: camera.recording ? camera.recording.failed : null,
  }, "camera-stats"));
}

function tick() {
  if (document.hidden) return;
  const now = performance.now();
  const views = [];
  if (wallVisible) tiles.forEach((v) => v.onScreen && views.push(v));
  if (enlarged) views.push(enlarged);
  for (const view of views) {
    if (!view.busy && now >= view.nextAt) loadFrame(view);
  }
}

// Fetch one frame and swap it in once decoded (no flicker). A 404 (no frame yet) or an error
// backs off up to 8 s before that view asks again.
async function loadFrame(view) {
  view.busy = true;
  try {
    const url = apiUrl(`api/cameras/${encodeURIComponent(view.id)}/frame.jpg`, { t: Date.now() });
    const response = await fetch(url, { cache: "no-store", credentials: "same-origin" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const objectUrl = URL.createObjectURL(await response.blob());
    const probe = new Image();
    probe.src = objectUrl;
    await probe.decode();
    if (view.gone) {
      URL.revokeObjectURL(objectUrl);
      return;
    }
    showFrame(view, objectUrl);
  } catch {
    view.failures += 1;
    view.nextAt = performance.now() + Math.min(8000, 500 * 2 ** view.failures);
  } finally {
    view.busy = false;
  }
}

function showFrame(view, objectUrl) {
  const previous = view.objectUrl;
  view.objectUrl = objectUrl;
  view.img.src = objectUrl;
  if (previous) URL.revokeObjectURL(previous);
  view.failures = 0;
  view.frame.classList.add("has-frame");
}

// A view leaves the page: free its frame and stop an in-flight load from showing.
function forget(view) {
  view.gone = true;
  if (view.objectUrl) URL.revokeObjectURL(view.objectUrl);
  view.objectUrl = null;
  if (observer && view.el) observer.unobserve(view.el);
}
