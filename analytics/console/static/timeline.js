// Recorded video on a time axis: the local date-time range inputs and one timeline bar per
// camera, each recorded segment at its place (segments held by a requisition marked).
// Shared by the supervisor's Recordings view and the police relay's playback.
//
// Times are Unix seconds of wall time (segment wall_start / wall_end); the inputs show local time.

import { dateTimeValue, h, localClock, localTime, parseDateTime } from "./dom.js";

const HOUR = 3600;

/**
 * "Since" and "Until" datetime-local inputs, by default the last hour (whole minutes). Options: testids
 * ({since, until}). Returns {since, until, set(since, until), lastHour(), read() -> {since, until}} where read
 * throws an Error saying what is wrong.
 */
export function rangeInputs({ testids = {} } = {}) {
  const since = h("input", { type: "datetime-local", step: "1", required: true, "data-testid": testids.since,
    "aria-label": "Since" });
  const until = h("input", { type: "datetime-local", step: "1", required: true, "data-testid": testids.until,
    "aria-label": "Until" });
  const set = (from, to) => {
    since.value = dateTimeValue(from);
    until.value = dateTimeValue(to);
  };
  const lastHour = () => {
    const now = Date.now() / 1000;
    set(Math.floor((now - HOUR) / 60) * 60, Math.ceil(now / 60) * 60);
  };
  const read = () => {
    const from = parseDateTime(since.value);
    const to = parseDateTime(until.value);
    if (!Number.isFinite(from) || !Number.isFinite(to)) throw new Error("Enter both the start and the end date and time");
    if (to <= from) throw new Error("The end must be after the start");
    return { since: from, until: to };
  };
  lastHour();
  return { since, until, set, lastHour, read };
}

/** The segment of `list` (sorted by wall_start) recorded at `t`, else the first one after it, else null. */
export function segmentAt(list, t) {
  const inside = list.find((s) => s.wall_start <= t && t < s.wall_end);
  return inside || list.find((s) => s.wall_start > t) || null;
}

/**
 * One camera's timeline over [since, until). onPick(segment, offset) is called when a moment is chosen: a click
 * anywhere on the bar picks the segment recorded then (or the next one), at the offset of that moment into it;
 * a segment activated from the keyboard plays from its start. Returns {el, setPlayhead(t | null)}.
 */
export function timelineBar(cameraId, segments, { since, until, onPick, label = cameraId }) {
  const span = until - since;
  const list = segments.filter((s) => Number.isFinite(s.wall_start) && Number.isFinite(s.wall_end))
    .sort((a, b) => a.wall_start - b.wall_start);
  const playhead = h("div", { class: "timeline-playhead", hidden: true });
  const bar = h("div", {
    class: "timeline-bar", "data-testid": "timeline", "data-camera-id": cameraId,
    title: "Click a moment to play it",
  }, list.map((s) => segmentBlock(s, since, span, onPick)), playhead);
  bar.addEventListener("click", (event) => {
    if (event.detail === 0) return; // a keyboard press on a segment: handled by the segment itself
    const rect = bar.getBoundingClientRect();
    const t = since + (Math.min(Math.max(event.clientX - rect.left, 0), rect.width) / rect.width) * span;
    const segment = segmentAt(list, t);
    if (segment) onPick(segment, Math.max(0, t - segment.wall_start), t);
    else onPick(null, 0, t);
  });
  const el = h("div", { class: "timeline-row" },
    h("div", { class: "timeline-label" }, h("strong", {}, label),
      h("span", { class: "muted" }, list.length ? ` ${list.length} segment${list.length > 1 ? "s" : ""}` : " no recording")),
    bar, axis(since, until));
  const setPlayhead = (t) => {
    playhead.hidden = !(Number.isFinite(t) && t >= since && t <= until);
    if (!playhead.hidden) playhead.style.left = `${((t - since) / span) * 100}%`;
  };
  return { el, setPlayhead };
}

function segmentBlock(segment, since, span, onPick) {
  const left = Math.max(0, (segment.wall_start - since) / span);
  const right = Math.min(1, (segment.wall_end - since) / span);
  const held = Boolean(segment.held);
  const text = `${localClock(segment.wall_start)} → ${localClock(segment.wall_end)}`
    + (held ? " · held by a requisition" : "");
  return h("button", {
    type: "button", class: held ? "timeline-segment held" : "timeline-segment", "data-testid": "timeline-segment",
    "data-segment-id": segment.id, "data-held": String(held), title: text, "aria-label": `Play ${text}`,
    style: { left: `${left * 100}%`, width: `${Math.max(0, right - left) * 100}%` },
    onclick: (event) => {
      if (event.detail === 0) onPick(segment, 0, segment.wall_start); // keyboard: from its start
    },
  });
}

// Five ticks along the bar: times of day, or dates too when the range spans more than a day.
function axis(since, until) {
  const long = until - since > 86400;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const t = since + f * (until - since);
    return h("span", { class: "timeline-tick", style: { left: `${f * 100}%` } }, long ? localTime(t) : localClock(t));
  });
  return h("div", { class: "timeline-axis", "aria-hidden": "true" }, ticks);
}

/** The legend under the timelines. */
export function timelineLegend() {
  return h("p", { class: "timeline-legend muted" },
    h("span", { class: "legend-swatch" }), " recorded  ",
    h("span", { class: "legend-swatch held" }), " held by a requisition (kept beyond retention)");
}
