// The police relay: what a police account sees, and all it sees. The cameras an administrator
// granted it (refreshed every 30 s), each with its live frame and the end of its grant; and for
// cameras whose grant includes recordings, a simple playback. Everything else is refused by the
// server, and every view is audited there.
//
// Frames are fetched like the wall's: about twice a second per tile, one request at a time,
// only while the tile is on screen and the tab visible. A 403 means the grant's window is over
// (or it was revoked): the tile says "access ended" and asks no more.

import { api, apiUrl } from "./api.js";
import { h, localTime, setChildren } from "./dom.js";
import { createPlayer } from "./player.js";
import { every, onEnd } from "./session.js";
import { rangeInputs, timelineBar } from "./timeline.js";
import { toast, toastError } from "./toast.js";

const REFRESH_MS = 30000;
const FRAME_MS = 500;

let parts = null; // {grid, playback, camera, range, timeline, player}
let observer = null;
const tiles = new Map(); // camera id -> tile state

/** Build the relay view into its container (a police session) and start it. */
export function mountRelay(container) {
  tiles.clear();
  const camera = h("select", { "aria-label": "Camera", "data-testid": "relay-recordings-camera" });
  const range = rangeInputs({ testids: { since: "relay-since", until: "relay-until" } });
  const player = createPlayer({
    onPosition: (segment, t) => parts && parts.bar && parts.bar.setPlayhead(segment ? t : null),
  });
  parts = { grid: h("div", { class: "wall-grid relay-grid" }), camera, range, player, bar: null,
    timeline: h("div", { class: "timelines" }), playback: null };
  const submit = (event) => {
    event.preventDefault();
    loadRecordings();
  };
  parts.playback = h("section", { class: "audit-section", "data-testid": "relay-playback", hidden: true },
    h("h2", {}, "Recorded video"),
    h("form", { class: "audit-controls", onsubmit: submit },
      h("label", {}, "Camera ", camera), h("label", {}, "From ", range.since), h("label", {}, "To ", range.until),
      h("button", { type: "submit", class: "primary" }, "Show")),
    parts.timeline, player.el);
  setChildren(container,
    h("section", { class: "audit-section" },
      h("h2", {}, "Cameras shared with you"),
      h("p", { class: "muted" }, "Each camera is shown until the end of its grant. Every view is recorded in the "
        + "centre's audit log."),
      parts.grid),
    parts.playback);
  observer = new IntersectionObserver((entries) => entries.forEach((e) => {
    const tile = tiles.get(e.target.dataset.cameraId);
    if (tile) tile.onScreen = e.isIntersecting;
  }), { rootMargin: "200px" });
  onEnd(() => {
    observer.disconnect();
    tiles.forEach(forget);
    tiles.clear();
    parts = null;
  });
  every(REFRESH_MS, loadCameras);
  every(FRAME_MS, tick);
  loadCameras();
}

async function loadCameras() {
  let list;
  try {
    list = await api("api/relay/cameras");
  } catch (err) {
    toastError(err);
    return;
  }
  if (!parts) return; // the session ended meanwhile
  const cameras = (Array.isArray(list) ? list : []).filter((c) => c && c.id !== undefined && c.id !== null);
  const granted = new Set(cameras.map((c) => String(c.id)));
  // A camera no longer listed: its grant ended or was revoked. Its tile stays, saying so.
  tiles.forEach((tile, id) => granted.has(id) || endAccess(tile));
  cameras.forEach((c) => tileFor(c));
  const ordered = [...tiles.values()];
  if (!ordered.length) setChildren(parts.grid, h("p", { class: "muted empty-wall" }, "No camera is shared with you now."));
  else setChildren(parts.grid, ordered.map((t) => t.el));
  renderPlaybackChoice(cameras.filter((c) => c.recorded));
}

function tileFor(camera) {
  const id = String(camera.id);
  let tile = tiles.get(id);
  if (!tile) {
    const img = h("img", { alt: `Camera ${id}`, decoding: "async" });
    const note = h("div", { class: "no-frame" }, "No frame yet");
    tile = { id, img, note, frame: h("div", { class: "frame" }, img, note), caption: h("figcaption", {}), el: null,
      onScreen: false, busy: false, nextAt: 0, failures: 0, objectUrl: null, gone: false, ended: false };
    tile.el = h("figure", { class: "tile relay-tile", "data-testid": "relay-tile", "data-camera-id": id },
      tile.frame, tile.caption);
    tiles.set(id, tile);
    observer.observe(tile.el);
  }
  if (tile.ended) { // granted again
    tile.ended = false;
    tile.failures = 0;
    tile.el.classList.remove("ended");
    tile.el.removeAttribute("data-ended");
    tile.note.textContent = "No frame yet";
  }
  setChildren(tile.caption,
    h("div", { class: "tile-head" }, h("span", { class: "cam-id" }, id),
      camera.recorded ? h("span", { class: "badge" }, "recordings") : null),
    h("div", { class: "muted", "data-testid": "relay-until" }, `shared until ${localTime(camera.until)}`),
    camera.recorded ? h("button", { type: "button", class: "tile-button", onclick: () => chooseRecordings(id) },
      "Recorded video") : null);
  return tile;
}

function endAccess(tile) {
  if (tile.ended) return;
  tile.ended = true;
  tile.el.classList.add("ended");
  tile.el.dataset.ended = "true";
  tile.frame.classList.remove("has-frame");
  tile.note.textContent = "access ended";
  tile.caption.querySelectorAll("button").forEach((b) => { b.disabled = true; });
}

function tick() {
  if (document.hidden || !parts) return;
  const now = performance.now();
  tiles.forEach((tile) => {
    if (tile.onScreen && !tile.ended && !tile.busy && now >= tile.nextAt) loadFrame(tile);
  });
}

// One frame, swapped in once decoded. 403: access over. 404 (no frame yet) or another error: back off up to 8 s.
async function loadFrame(tile) {
  tile.busy = true;
  try {
    const url = apiUrl(`api/relay/cameras/${encodeURIComponent(tile.id)}/frame.jpg`, { t: Date.now() });
    const response = await fetch(url, { cache: "no-store", credentials: "same-origin" });
    if (response.status === 403) {
      endAccess(tile);
      return;
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const objectUrl = URL.createObjectURL(await response.blob());
    const probe = new Image();
    probe.src = objectUrl;
    await probe.decode();
    if (tile.gone || tile.ended) {
      URL.revokeObjectURL(objectUrl);
      return;
    }
    const previous = tile.objectUrl;
    tile.objectUrl = objectUrl;
    tile.img.src = objectUrl;
    if (previous) URL.revokeObjectURL(previous);
    tile.failures = 0;
    tile.frame.classList.add("has-frame");
  } catch {
    tile.failures += 1;
    tile.nextAt = performance.now() + Math.min(8000, 500 * 2 ** tile.failures);
  } finally {
    tile.busy = false;
  }
}

function forget(tile) {
  tile.gone = true;
  if (tile.objectUrl) URL.revokeObjectURL(tile.objectUrl);
  tile.objectUrl = null;
}

// ---- playback of granted recordings ------------------------------------------------------

function renderPlaybackChoice(recorded) {
  parts.playback.hidden = recorded.length === 0;
  const chosen = parts.camera.value;
  setChildren(parts.camera, recorded.map((c) => h("option", { value: String(c.id) }, String(c.id))));
  if (recorded.some((c) => String(c.id) === chosen)) parts.camera.value = chosen;
  if (!recorded.length) {
    parts.player.stop();
    setChildren(parts.timeline);
    parts.bar = null;
  }
}

function chooseRecordings(id) {
  parts.camera.value = id;
  parts.playback.scrollIntoView({ block: "start", behavior: "smooth" });
  loadRecordings();
}

async function loadRecordings() {
  const camera = parts.camera.value;
  if (!camera) return;
  let span;
  try {
    span = parts.range.read();
  } catch (err) {
    toastError(err);
    return;
  }
  try {
    const segments = await api("api/relay/recordings", { query: { camera, ...span } });
    // Holds are the centre's business: a police account sees every segment alike.
    const list = (Array.isArray(segments) ? segments : []).filter((s) => s && s.id !== undefined)
      .map((s) => ({ ...s, held: false })).sort((a, b) => a.wall_start - b.wall_start);
    parts.bar = timelineBar(camera, list, { ...span, onPick: (segment, offset, t) => {
      if (segment) parts.player.play(list, list.indexOf(segment), offset);
      else toast(`No recording at or after ${localTime(t)} in this range`, "info");
    } });
    setChildren(parts.timeline, parts.bar.el,
      list.length ? null : h("p", { class: "muted" }, "No recording in this range."));
  } catch (err) {
    toastError(err);
  }
}
