// Short messages in a corner: server errors (their "detail") and action confirmations.
// Errors stay longer than confirmations; any toast closes on click.

import { h } from "./dom.js";

const MAX_TOASTS = 5;

/** Show `message`; kind is "error" (default) or "info". */
export function toast(message, kind = "error") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const el = h("div", { class: `toast toast-${kind}`, "data-testid": "toast", role: kind === "error" ? "alert" : "status" },
    String(message));
  el.addEventListener("click", () => el.remove());
  box.append(el);
  while (box.children.length > MAX_TOASTS) box.firstElementChild.remove();
  // A plain timeout, not a session timer: a "session expired" toast must outlive the session.
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 4000);
}

/** Toast an ApiError (or any error) with its message; a lost session was already announced. */
export function toastError(err) {
  if (err && err.sessionLost) return;
  toast(err && err.message ? err.message : String(err), "error");
}
