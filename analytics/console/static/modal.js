// A stack of overlays (alert page, escalate dialog, help, enlarged camera...).
//
// Esc always closes the top one. An overlay may take the keyboard first (onKey):
// the escalate dialog reads digits and arrows, the alert page lets the action keys
// through to its own alert. Focus returns to where it was when an overlay closes.

import { h } from "./dom.js";

const stack = [];

/**
 * Show `content` in an overlay. Options: onKey(event) -> true when handled,
 * onClose() after it is removed, testid and label for the panel, wide (bigger panel).
 * Returns a handle {close, panel}.
 */
export function openModal(content, { onKey, onClose, testid, label, wide = false } = {}) {
  const panel = h("div", {
    class: wide ? "modal-panel wide" : "modal-panel", role: "dialog", "aria-modal": "true",
    "aria-label": label || "dialog", "data-testid": testid, tabindex: "-1",
  }, content);
  const backdrop = h("div", { class: "modal-backdrop" }, panel);
  const entry = { backdrop, panel, onKey, onClose, returnFocus: document.activeElement, closed: false };
  // A click on the dim background (not inside the panel) closes, like Esc.
  backdrop.addEventListener("mousedown", (event) => {
    if (event.target === backdrop) closeEntry(entry);
  });
  stack.push(entry);
  document.body.append(backdrop);
  panel.focus({ preventScroll: true });
  return { panel, close: () => closeEntry(entry) };
}

function closeEntry(entry) {
  if (entry.closed) return;
  entry.closed = true;
  const i = stack.indexOf(entry);
  if (i >= 0) stack.splice(i, 1);
  entry.backdrop.remove();
  if (entry.returnFocus && entry.returnFocus.isConnected) entry.returnFocus.focus({ preventScroll: true });
  if (entry.onClose) entry.onClose();
}

/** Close the top overlay; false when none was open. */
export function closeTopModal() {
  const top = stack[stack.length - 1];
  if (!top) return false;
  closeEntry(top);
  return true;
}

/** Close every overlay (logout). */
export function closeAllModals() {
  while (closeTopModal()) {
    /* one at a time so each onClose runs */
  }
}

/** Give the top overlay the key first; true when it handled it. */
export function modalKey(event) {
  const top = stack[stack.length - 1];
  return Boolean(top && top.onKey && top.onKey(event));
}

/** The number of open overlays. */
export function modalCount() {
  return stack.length;
}
