// Recorded playback (supervisor and above): a camera (or all) and a time range, a timeline
// per camera with its recorded segments, and a player. A click on a timeline plays the
// segment recorded at that moment from that moment; the player goes on with the next segment.
// Every playback is audited by the server.
//
// playAt() is the way in from elsewhere (an alert page, a requisition): it asks the server
// for the segment at a moment and opens this view on it.

import { api, ApiError } from "./api.js";
import { h, localTime, setChildren } from "./dom.js";
import { createPlayer } from "./player.js";
import { rangeInputs, timelineBar, timelineLegend } from "./timeline.js";
import { onEnd } from "./session.js";
import { toast, toastError } from "./toast.js";

const AROUND_S = 15 * 60; // the range shown around a moment opened from elsewhere

let view = null; // {camera, range, timelines, player, bars: Map, segments: Map, loaded, loading}

/** Build the view into its container (per session; data loads when first shown). */
export function mountRecordings(container) {
  const camera = h("select", { "data-testid": "recordings-camera", "aria-label": "Camera" },
    h("option", { value: "" }, "All cameras"));
  const range = rangeInputs({ testids: { since: "recordings-since", until: "recordings-until" } });
  const player = createPlayer({ onPosition: showPosition });
  view = { camera, range, player, timelines: h("div", { class: "timelines" }), bars: new Map(), segments: new Map(),
    loaded: false, camerasLoaded: false, request: 0 };
  onEnd(() => {
    view = null; // playAt() from the next session's alert pages must not reach this one's view
  });
  const submit = (event) => {
    event.preventDefault();
    load();
  };
  const lastHour = () => {
    range.lastHour();
    load();
  };
  setChildren(container,
    h("form", { class: "audit-controls", "data-testid": "recordings-form", onsubmit: submit },
      h("label", {}, "Camera ", camera), h("label", {}, "From ", range.since), h("label", {}, "To ", range.until),
      h("button", { type: "submit", class: "primary" }, "Show"),
      h("button", { type: "button", onclick: lastHour }, "Last hour")),
    // The player stays in sight (sticky) while the timelines of many cameras scroll under it.
    h("section", { class: "audit-section player-section" }, player.el),
    h("section", { class: "audit-section" }, h("h2", {}, "Recorded segments"), view.timelines, timelineLegend()));
}

/** The first time the view is shown: the cameras, then the last hour. */
export function showRecordings() {
  if (!view || view.loaded) return;
  view.loaded = true;
  loadCameras().then(load);
}

/** The view is hidden: pause (a hidden video playing on wastes the link and the server). */
export function hideRecordings() {
  if (view) view.player.pause();
}

/**
 * Open the view on `cameraId` at wall time `t` (Unix seconds) and play from there. A moment without a recording
 * is told in a toast and changes nothing. Returns true when it opened.
 */
export async function playAt(cameraId, t) {
  if (!view) return false;
  let found;
  try {
    found = await api("api/recordings/at", { query: { camera: cameraId, t: t.toFixed(3) } });
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) toast(`No recording of ${cameraId} at ${localTime(t)}`);
    else toastError(err);
    return false;
  }
  view.loaded = true; // showRecordings must not load the default range over this one
  await loadCameras();
  view.camera.value = cameraId;
  if (view.camera.value !== cameraId) view.camera.append(h("option", { value: cameraId, selected: true }, cameraId));
  view.range.set(Math.floor(t - AROUND_S), Math.ceil(t + AROUND_S));
  location.hash = "recordings";
  await load();
  const list = view.segments.get(cameraId) || [];
  const index = list.findIndex((s) => s.id === found.id);
  if (index >= 0) view.player.play(list, index, Number(found.offset) || 0);
  else view.player.play([found], 0, Number(found.offset) || 0); // listed by the server a moment after
  return true;
}

async function loadCameras() {
  if (view.camerasLoaded) return;
  try {
    const cameras = await api("api/cameras");
    const chosen = view.camera.value;
    setChildren(view.camera, h("option", { value: "" }, "All cameras"),
      (Array.isArray(cameras) ? cameras : []).filter((c) => c && c.id !== undefined).map((c) =>
        h("option", { value: String(c.id) }, c.name && c.name !== c.id ? `${c.id} — ${c.name}` : String(c.id))));
    view.camera.value = chosen;
    view.camerasLoaded = true;
  } catch (err) {
    toastError(err);
  }
}

async function load() {
  let span;
  try {
    span = view.range.read();
  } catch (err) {
    toastError(err);
    return;
  }
  const camera = view.camera.value;
  const request = ++view.request; // an older answer arriving late must not replace a newer one
  setChildren(view.timelines, h("p", { class: "muted" }, "Loading…"));
  try {
    const segments = await api("api/recordings", { query: { camera, ...span } });
    if (request !== view.request) return;
    renderTimelines(Array.isArray(segments) ? segments : [], camera, span);
  } catch (err) {
    if (request !== view.request) return;
    setChildren(view.timelines, h("p", { class: "error-text" }, err.message));
    toastError(err);
  }
}

// One bar per camera: the chosen one, or every camera of the select (those without a recording in the range too,
// so a gap shows), then any other camera the server listed.
function renderTimelines(segments, camera, span) {
  view.segments = new Map();
  segments.filter((s) => s && s.id !== undefined).forEach((s) => {
    const id = String(s.camera_id);
    if (!view.segments.has(id)) view.segments.set(id, []);
    view.segments.get(id).push(s);
  });
  view.segments.forEach((list) => list.sort((a, b) => a.wall_start - b.wall_start));
  const ids = camera ? [camera] : [...new Set([...[...view.camera.options].map((o) => o.value).filter(Boolean),
    ...view.segments.keys()])];
  view.bars = new Map(ids.map((id) => [id, timelineBar(id, view.segments.get(id) || [], {
    ...span, onPick: (segment, offset, t) => pick(id, segment, offset, t),
  })]));
  setChildren(view.timelines, ids.length ? [...view.bars.values()].map((b) => b.el)
    : h("p", { class: "muted" }, "No camera."));
  if (!segments.length) view.timelines.append(h("p", { class: "muted" }, "No recording in this range."));
}

function pick(cameraId, segment, offset, t) {
  if (!segment) {
    toast(`No recording of ${cameraId} at or after ${localTime(t)} in this range`, "info");
    return;
  }
  const list = view.segments.get(cameraId) || [];
  view.player.play(list, list.indexOf(segment), offset);
}

function showPosition(segment, t) {
  if (!view) return;
  view.bars.forEach((bar, id) => bar.setPlayhead(segment && String(segment.camera_id) === id ? t : null));
}
