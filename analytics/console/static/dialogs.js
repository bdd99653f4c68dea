// Dialogs driven from the keyboard: choosing the authority to escalate to, the help overlay, and the
// confirmation of a logged act.

import { api } from "./api.js";
import { title } from "./describe.js";
import { h } from "./dom.js";
import { openModal } from "./modal.js";
import { session } from "./session.js";
import { SHORTCUTS } from "./shortcuts.js";
import { toast, toastError } from "./toast.js";

/** Fetch the authorities now (at login): the first escalation opens at once, the timeline shows names. */
export function preloadAuthorities() {
  authorities().catch(() => {
    /* retried, with its error shown, on the first escalation */
  });
}

/** The escalation authorities, fetched once per session. */
async function authorities() {
  if (session.authorities) return session.authorities;
  const user = session.user;
  const list = await api("api/authorities");
  const valid = Array.isArray(list) ? list.filter((a) => a && a.id !== undefined) : [];
  if (session.user === user) session.authorities = valid; // not into the next user's session
  return valid;
}

/**
 * Ask which authority to escalate `alert` to. Digits 1-9 pick directly, arrows move and
 * Enter confirms, Esc cancels. Resolves {authority, comment}, or null when cancelled.
 */
export async function chooseAuthority(alert, comment = "") {
  let list;
  try {
    list = await authorities();
  } catch (err) {
    toastError(err);
    return null;
  }
  if (!list.length) {
    toast("No authority is configured to escalate to: ask an administrator");
    return null;
  }
  return new Promise((resolve) => escalateDialog(alert, list, comment, resolve));
}

function escalateDialog(alert, list, comment, resolve) {
  let index = 0;
  let settled = false;
  const commentInput = h("input", {
    type: "text", class: "comment", value: comment || "", maxlength: "500",
    placeholder: "reference or comment (optional)", "aria-label": "Comment",
  });
  const choose = (i) => {
    if (settled || !list[i]) return;
    settled = true;
    handle.close();
    resolve({ authority: list[i], comment: commentInput.value });
  };
  const items = list.map((a, i) => authorityItem(a, i, () => choose(i)));
  const highlight = (i) => {
    index = Math.min(list.length - 1, Math.max(0, i));
    items.forEach((item, j) => {
      item.classList.toggle("active", j === index);
      item.setAttribute("aria-selected", String(j === index));
    });
    items[index].scrollIntoView({ block: "nearest" });
  };
  const form = h("form", { class: "escalate-form", onsubmit: (e) => { e.preventDefault(); choose(index); } },
    h("h2", {}, `Escalate alert ${alert.id}`),
    h("p", { class: "muted" }, title(alert)),
    h("ol", { class: "authorities", role: "listbox", "aria-label": "Authorities" }, items),
    h("label", { class: "field" }, "Comment ", commentInput),
    h("div", { class: "buttons" },
      h("button", { type: "submit", class: "primary" }, "Escalate ", h("kbd", {}, "Enter")),
      h("button", { type: "button", onclick: () => handle.close() }, "Cancel ", h("kbd", {}, "Esc"))));
  const onKey = (event) => escalateKey(event, { choose, highlight, index: () => index, count: list.length });
  const handle = openModal(form, {
    testid: "escalate-dialog", label: "Escalate", onKey,
    onClose: () => {
      if (!settled) {
        settled = true;
        resolve(null);
      }
    },
  });
  highlight(0);
}

// Keys inside the escalate dialog (the comment field keeps its own typing: keys.js
// does not pass keys from inputs here). Everything else is swallowed so that "a" or
// "f" cannot act on the alert behind the dialog; m and ? still work.
function escalateKey(event, { choose, highlight, index, count }) {
  if (/^[1-9]$/.test(event.key)) {
    const i = Number(event.key) - 1;
    if (i < count) choose(i);
    return true;
  }
  if (event.key === "ArrowDown" || event.key === "j") highlight(index() + 1);
  else if (event.key === "ArrowUp" || event.key === "k") highlight(index() - 1);
  else if (event.key === "Enter") choose(index());
  else if (event.key === "m" || event.key === "?") return false;
  return true;
}

function authorityItem(a, i, onChoose) {
  const steps = Array.isArray(a.protocol) ? a.protocol : [];
  return h("li", { class: "authority", role: "option", "data-authority-id": a.id, onclick: onChoose },
    h("div", { class: "authority-head" },
      i < 9 ? h("kbd", {}, String(i + 1)) : null,
      h("strong", {}, a.name || a.id),
      a.kind ? h("span", { class: "muted" }, ` (${a.kind})`) : null),
    h("div", { class: "contacts" },
      a.phone ? h("span", { class: "phone" }, `☎ ${a.phone}`) : null,
      a.email ? h("span", { class: "email" }, `✉ ${a.email}`) : null),
    steps.length ? h("ol", { class: "protocol" }, steps.map((s) => h("li", {}, String(s)))) : null);
}

/** The keyboard help overlay (? toggles it, Esc closes). */
export function openHelp() {
  const rows = SHORTCUTS.map((s) =>
    h("tr", {}, h("td", { class: "keys" }, joinKeys(s.keys)), h("td", {}, s.text)));
  const content = h("div", { class: "help" },
    h("h2", {}, "Keyboard shortcuts"),
    h("table", { class: "data" }, h("tbody", {}, rows)),
    h("p", { class: "muted" },
      "Shortcuts are ignored while typing in a field. Inside the alert page, the action keys act on that alert."));
  const handle = openModal(content, {
    testid: "help", label: "Keyboard shortcuts",
    onKey: (event) => {
      if (event.key !== "?") return false;
      handle.close();
      return true;
    },
  });
}

function joinKeys(keys) {
  return keys.flatMap((k, i) => (i ? [" or ", h("kbd", {}, k)] : [h("kbd", {}, k)]));
}

/**
 * Ask to confirm an act (releasing a hold, revoking a grant). `text`: a string or a list of paragraphs.
 * Resolves true when confirmed; false on Cancel, Esc or a click outside. Cancel has the focus.
 */
export function confirmAction({ title: heading, text, confirm = "Confirm" }) {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (value) => {
      if (settled) return;
      settled = true;
      handle.close();
      resolve(value);
    };
    const cancel = h("button", { type: "button", "data-testid": "confirm-cancel", onclick: () => settle(false) },
      "Cancel ", h("kbd", {}, "Esc"));
    const content = h("div", { class: "confirm" },
      h("h2", {}, heading),
      [text].flat().map((p) => h("p", {}, p)),
      h("div", { class: "buttons" },
        h("button", { type: "button", class: "danger", "data-testid": "confirm-ok", onclick: () => settle(true) }, confirm),
        cancel));
    const handle = openModal(content, {
      testid: "confirm-dialog", label: heading,
      onClose: () => {
        if (!settled) {
          settled = true;
          resolve(false);
        }
      },
    });
    cancel.focus();
  });
}
