// Alert actions: one POST each, shared by the keyboard, the queue buttons and the alert page.
//
// On success the returned alert is applied to the lists at once, the selection moves
// on to the next alert (so an operator can work down the queue with one key per
// alert), and an "alert-changed" event tells an open alert page to reload. The
// server decides what the life cycle allows: a refused action (409) shows its message.

import { ApiError, post } from "./api.js";
import { applyAlert, select, store, successorOf } from "./alerts.js";
import { chooseAuthority } from "./dialogs.js";
import { words } from "./dom.js";
import { toast, toastError } from "./toast.js";

export const VERDICTS = ["true_alert", "false_alarm", "duplicate"];

// "alert id + action" with a request in flight: a double press must not send the same action twice
// (a different action on the same alert, e.g. legal hold during a review, still goes).
const inFlight = new Set();

async function act(alert, path, body, { done, moveOn = true, quiet409 = false } = {}) {
  if (!alert) {
    toast("No alert selected", "info");
    return null;
  }
  const key = `${alert.id}\n${path}`;
  if (inFlight.has(key)) return null;
  inFlight.add(key);
  const next = successorOf(alert.id);
  const wasSelected = store.selectedId === alert.id;
  try {
    const updated = await post(`api/alerts/${encodeURIComponent(alert.id)}/${path}`, body);
    applyAlert(updated);
    if (moveOn && wasSelected && next !== null) select(next);
    document.dispatchEvent(new CustomEvent("alert-changed", { detail: updated }));
    if (done) toast(done, "info");
    return updated;
  } catch (err) {
    if (!(quiet409 && err instanceof ApiError && err.status === 409)) toastError(err);
    return null;
  } finally {
    inFlight.delete(key);
  }
}

function withComment(body, comment) {
  const text = typeof comment === "string" ? comment.trim() : "";
  return text ? { ...body, comment: text } : body;
}

/** Mark a new alert as seen (on opening it). A 409 means someone else moved it on: not worth a toast. */
export function markSeen(alert) {
  return act(alert, "seen", {}, { moveOn: false, quiet409: true });
}

export function acknowledge(alert, comment) {
  return act(alert, "acknowledge", withComment({}, comment), { done: `Alert ${alert && alert.id} acknowledged` });
}

/** Ask for the authority (dialog), then escalate. Cancelling sends nothing. */
export async function escalate(alert, comment) {
  if (!alert) {
    toast("No alert selected", "info");
    return null;
  }
  const choice = await chooseAuthority(alert, comment);
  if (!choice) return null;
  return act(alert, "escalate", withComment({ authority: choice.authority.id }, choice.comment),
    { done: `Alert ${alert.id} escalated to ${choice.authority.name || choice.authority.id}` });
}

/** Close with a verdict (true_alert, false_alarm, duplicate). */
export function closeAlert(alert, verdict, comment) {
  return act(alert, "close", withComment({ verdict }, comment),
    { done: `Alert ${alert && alert.id} closed as ${words(verdict)}` });
}

/** Supervisor: change the verdict of a closed alert. */
export function review(alert, verdict, comment) {
  return act(alert, "review", withComment({ verdict }, comment),
    { moveOn: false, done: `Alert ${alert && alert.id} reviewed: ${words(verdict)}` });
}

/** Supervisor: keep (or release) the alert's evidence beyond retention. */
export function setLegalHold(alert, hold) {
  return act(alert, "legal-hold", { hold: Boolean(hold) },
    { moveOn: false, done: `Legal hold ${hold ? "set on" : "released for"} alert ${alert && alert.id}` });
}
