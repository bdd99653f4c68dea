// The alert page: everything an operator needs to decide (snapshot, clip, evidence,
// why it ranks where it does, who did what) and the actions, as an overlay above the wall.
//
// The page reloads the alert (GET /api/alerts/{id}, with its transitions) when an action
// changes it or a push shows it was updated elsewhere. The comment box and the clip are
// kept across reloads so that a push never wipes what the operator is typing or watching.

import { acknowledge, closeAlert, escalate, markSeen, review, setLegalHold, VERDICTS } from "./actions.js";
import { api, ApiError } from "./api.js";
import { findAlert, moveSelection, subscribe } from "./alerts.js";
import { place } from "./describe.js";
import { countedList, h, kvTable, localTime, num, safeUrl, setChildren, table, valueText, words } from "./dom.js";
import { openModal } from "./modal.js";
import { playAt } from "./recordings.js";
import { hasRole, later, onEnd, session } from "./session.js";
import { keyOf } from "./shortcuts.js";
import { toastError } from "./toast.js";

let page = null; // {id, alert, handle, parts: {...}, comment, mediaKey}
const PLAY_BEFORE_S = 5; // "play recording at this moment" starts this much before the alert was raised

/** Per session: follow action results and pushes while a page is open. */
export function mountAlertPage() {
  const onChanged = (event) => {
    if (page && event.detail && event.detail.id === page.id) reload();
  };
  document.addEventListener("alert-changed", onChanged);
  onEnd(() => document.removeEventListener("alert-changed", onChanged));
  subscribe(followPushes);
}

/** The id of the alert shown, or null. */
export function alertPageId() {
  return page ? page.id : null;
}

/** Open (or switch the open page to) alert `id`; a new alert is marked seen first. */
export async function openAlertPage(id) {
  if (id === null || id === undefined) return;
  const listed = findAlert(id);
  if (!page) page = createPage();
  page.id = id;
  page.comment.value = "";
  if (listed) render(listed);
  if (listed && listed.status === "new") await markSeen(listed);
  await reload();
}

export function closeAlertPage() {
  if (page) page.handle.close();
}

function createPage() {
  const parts = {
    head: h("header", { class: "page-head" }),
    media: h("div", { class: "page-media" }),
    facts: h("div", { class: "page-facts" }),
    evidence: h("section", { class: "page-section" }),
    breakdown: h("section", { class: "page-section" }),
    timeline: h("section", { class: "page-section" }),
    actions: h("div", { class: "page-buttons" }),
    supervisor: h("div", { class: "page-buttons supervisor" }),
  };
  const comment = h("textarea", { class: "comment", rows: "2", maxlength: "1000", "aria-label": "Comment",
    placeholder: "comment sent with the next action (optional)" });
  const body = h("div", { class: "alert-page" },
    parts.head,
    h("div", { class: "page-grid" }, parts.media, parts.facts),
    h("div", { class: "page-grid" }, parts.evidence, parts.breakdown),
    parts.timeline,
    h("section", { class: "page-section page-actions" }, h("h3", {}, "Actions"), comment, parts.actions,
      parts.supervisor));
  const handle = openModal(body, {
    testid: "alert-page", label: "Alert", wide: true, onKey: pageKey,
    onClose: () => {
      page = null;
    },
  });
  return { id: null, alert: null, handle, parts, comment, mediaKey: null, reloadTimer: null };
}

async function reload() {
  if (!page) return;
  const id = page.id;
  try {
    const alert = await api(`api/alerts/${encodeURIComponent(id)}`);
    if (page && page.id === id && alert) render(alert);
  } catch (err) {
    toastError(err);
    if (err instanceof ApiError && err.status === 404) closeAlertPage();
  }
}

// A push carrying a newer version of the open alert (another operator acted): reload, at most
// once per half second however many pushes arrive.
function followPushes() {
  if (!page || !page.alert || page.reloadTimer !== null) return;
  const listed = findAlert(page.id);
  if (!listed || listed.updated_at === page.alert.updated_at) return;
  page.reloadTimer = later(500, () => {
    if (!page) return;
    page.reloadTimer = null;
    reload();
  });
}

function render(alert) {
  page.alert = alert;
  const p = page.parts;
  setChildren(p.head, header(alert));
  renderMedia(alert);
  setChildren(p.facts, factsTable(alert));
  setChildren(p.evidence, h("h3", {}, "Evidence"), kvTable(alert.evidence, "evidence-table"));
  setChildren(p.breakdown, h("h3", {}, "Why this rank"), breakdownTable(alert.breakdown));
  setChildren(p.timeline, h("h3", {}, "Timeline"), timeline(alert.transitions));
  setChildren(p.actions, actionButtons(alert));
  setChildren(p.supervisor, hasRole("supervisor") ? supervisorButtons(alert) : []);
}

function header(alert) {
  return [
    h("h2", {}, `Alert ${alert.id} — ${words(alert.kind) || "alert"}`),
    h("div", { class: "badges" },
      alert.critical ? h("span", { class: "badge badge-critical" }, "CRITICAL") : null,
      h("span", { class: `badge status-${alert.status}`, "data-testid": "alert-status" }, words(alert.status)),
      alert.verdict ? h("span", { class: "badge badge-verdict" }, words(alert.verdict)) : null,
      alert.legal_hold ? h("span", { class: "badge badge-hold" }, "legal hold") : null,
      h("span", { class: "badge" }, `priority ${num(alert.priority)}`)),
    h("button", { type: "button", class: "page-close", onclick: closeAlertPage }, "Close ", h("kbd", {}, "Esc")),
  ];
}

// The clip restarts if its element is rebuilt: only rebuild when the URLs change.
function renderMedia(alert) {
  const snapshot = safeUrl(alert.snapshot_url);
  const clip = safeUrl(alert.clip_url);
  const key = `${snapshot}|${clip}`;
  if (page.mediaKey === key) return;
  page.mediaKey = key;
  const unavailable = (what) => h("div", { class: "media-missing" }, `No ${what}`);
  const img = snapshot ? h("img", { src: snapshot, alt: `Snapshot of alert ${alert.id}`, class: "snapshot" }) : null;
  if (img) img.addEventListener("error", () => img.replaceWith(unavailable("snapshot (failed to load)")));
  const video = clip ? h("video", { src: clip, controls: true, autoplay: true, muted: true, loop: true,
    playsinline: true, class: "clip" }) : null;
  if (video) video.muted = true; // the attribute alone does not mute in every browser; autoplay needs it
  setChildren(page.parts.media, img || unavailable("snapshot"), video || unavailable("clip"));
}

function factsTable(alert) {
  const facts = {
    camera: alert.camera_id,
    place: place(alert) || "—",
    rule: alert.rule_id,
    severity: alert.severity,
    score: alert.score,
    frame_time: frameSpan(alert.start, alert.end),
    created: localTime(alert.created_at),
    updated: localTime(alert.updated_at),
    members: alert.member_ids,
    classes: countedList(alert.classes), // one class per member: "person × 9" reads better
    best_frame: alert.best_frame_seq,
    comment: alert.comment || null,
  };
  return kvTable(facts, "alert-facts");
}

// start/end are frame times in seconds: a live stream's are Unix times (shown as local
// time), a file's are seconds from its start (shown as such).
function frameSpan(start, end) {
  if (typeof start !== "number") return "—";
  const asText = (t) => (t > 1e9 ? localTime(t) : `${num(t, 1)} s`);
  const span = typeof end === "number" ? ` (${num(end - start, 1)} s)` : "";
  return `${asText(start)} → ${typeof end === "number" ? asText(end) : "…"}${span}`;
}

/**
 * The priority breakdown, generically: each key is a factor object ({factor, value, inputs...})
 * or a plain value (the total). Timestamps ("at", "*_at") show in local time. A "formula" string
 * is shown above the table rather than squeezed into a cell.
 */
function breakdownTable(breakdown) {
  const all = breakdown && typeof breakdown === "object" ? Object.entries(breakdown) : [];
  const formula = all.find(([k, v]) => k === "formula" && typeof v === "string");
  const entries = all.filter(([k, v]) => !(k === "formula" && typeof v === "string"));
  const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  const rest = (v) => Object.fromEntries(Object.entries(v).filter(([k]) => k !== "factor" && k !== "value"));
  const asValue = (k, v) => (typeof v === "number" && (k === "at" || k.endsWith("_at")) ? localTime(v) : valueText(v));
  const rows = table([
    { label: "Part", value: ([k]) => words(k) },
    { label: "Value", class: "num", value: ([k, v]) => (isObj(v) ? ("value" in v ? num(v.value) : "") : asValue(k, v)) },
    { label: "Factor", class: "num", value: ([, v]) => (isObj(v) && "factor" in v ? `× ${num(v.factor)}` : "") },
    { label: "Inputs", value: ([, v]) => (isObj(v) ? valueText(rest(v)) : "") },
  ], entries, { testid: "breakdown-table" });
  return [formula ? h("p", { class: "formula" }, `priority = ${formula[1]}`) : null, rows];
}

function timeline(transitions) {
  const list = Array.isArray(transitions) ? transitions : [];
  if (!list.length) return h("p", { class: "muted" }, "No action yet.");
  return h("ol", { class: "timeline", "data-testid": "alert-timeline" }, list.map((t) =>
    h("li", {},
      h("time", {}, localTime(t.at)), " ",
      h("strong", {}, t.user || "?"), " ",
      h("span", { class: `badge status-${t.status}` }, words(t.status)),
      t.verdict ? h("span", { class: "badge badge-verdict" }, words(t.verdict)) : null,
      t.authority ? h("span", {}, ` → ${authorityName(t.authority)}`) : null,
      t.comment ? h("div", { class: "timeline-comment" }, `“${t.comment}”`) : null)));
}

function authorityName(id) {
  const found = (session.authorities || []).find((a) => a.id === id);
  return found && found.name ? found.name : String(id);
}

// Which buttons make sense for a status. A mirror of the life cycle in analytics/alerts/model.py,
// used only to grey buttons out: the server decides, and answers 409 when it refuses.
const ALLOWED = {
  acknowledge: new Set(["new", "seen"]),
  escalate: new Set(["new", "seen", "acknowledged"]),
  close: new Set(["new", "seen", "acknowledged", "escalated"]),
};

function actionButtons(alert) {
  const s = alert.status;
  const button = (label, action, allowed, fn) => h("button", {
    type: "button", disabled: !allowed, "data-action": action, onclick: fn,
  }, label, " ", h("kbd", {}, keyOf(action)));
  return [
    button("Acknowledge", "acknowledge", ALLOWED.acknowledge.has(s), () => pageAction("acknowledge")),
    button("Escalate…", "escalate", ALLOWED.escalate.has(s), () => pageAction("escalate")),
    button("False alarm", "false_alarm", ALLOWED.close.has(s), () => pageAction("false_alarm")),
    button("True alert", "true_alert", ALLOWED.close.has(s), () => pageAction("true_alert")),
    button("Duplicate", "duplicate", ALLOWED.close.has(s), () => pageAction("duplicate")),
  ];
}

function supervisorButtons(alert) {
  const hold = Boolean(alert.legal_hold);
  const holdButton = h("button", {
    type: "button", class: hold ? "toggle on" : "toggle", "aria-pressed": String(hold), "data-testid": "legal-hold",
    onclick: () => setLegalHold(alert, !hold),
  }, `Legal hold: ${hold ? "on" : "off"}`);
  const playButton = h("button", {
    type: "button", "data-testid": "play-at-alert", title: `The camera's recording from ${PLAY_BEFORE_S} s before the alert`,
    onclick: () => playRecording(alert),
  }, "Play recording at this moment");
  if (alert.status !== "closed") return [holdButton, playButton];
  const reviewButtons = VERDICTS.map((verdict) => h("button", {
    type: "button", class: alert.verdict === verdict ? "current" : "", "data-review": verdict,
    disabled: alert.verdict === verdict,
    onclick: () => withComment((c) => review(alert, verdict, c)),
  }, words(verdict)));
  return [h("span", { class: "muted" }, "Review verdict:"), reviewButtons, holdButton, playButton];
}

// The Recordings view on the alert's camera, a few seconds before it was raised; the page closes once it opened
// (a moment without a recording is told in a toast, and the page stays).
async function playRecording(alert) {
  if (typeof alert.created_at !== "number") return;
  if (await playAt(alert.camera_id, alert.created_at - PLAY_BEFORE_S)) closeAlertPage();
}

// The comment goes with the action and is cleared once the action succeeded (kept if refused
// or cancelled, so nothing typed is lost).
async function withComment(send) {
  const comment = page.comment;
  const updated = await send(comment.value);
  if (updated) comment.value = "";
  return updated;
}

// The page's own alert is the target (not the queue selection).
async function pageAction(action) {
  if (!page || !page.alert) return;
  const alert = page.alert;
  if (action === "acknowledge") await withComment((c) => acknowledge(alert, c));
  else if (action === "escalate") await withComment((c) => escalate(alert, c));
  else if (VERDICTS.includes(action)) {
    const updated = await withComment((c) => closeAlert(alert, action, c));
    if (updated) closeAlertPage(); // closed: back to the queue, already on the next alert
  }
}

// Keys while the page is the top overlay: actions act on this alert; j/k walk the queue with
// the page following; Enter/o do nothing more (already open). Others go to the global map.
function pageKey(event) {
  const key = event.key;
  const actions = { a: "acknowledge", e: "escalate", f: "false_alarm", t: "true_alert", d: "duplicate" };
  if (actions[key]) {
    if (!event.repeat) pageAction(actions[key]);
    return true;
  }
  const step = { j: 1, ArrowDown: 1, k: -1, ArrowUp: -1 }[key];
  if (step) {
    const next = moveSelection(step);
    if (next && next.id !== page.id) openAlertPage(next.id);
    return true;
  }
  return key === "Enter" || key === "o";
}
