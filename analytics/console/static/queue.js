// The alert side panel: the ranked queue (new + seen), the "in hand" list
// (acknowledged + escalated) and the buttons acting on the selected alert.
//
// Rows are keyed by alert id and reused between pushes, so only a genuinely new alert
// gets the entry animation, and the selected row keeps its place on screen.

import { acknowledge, closeAlert, escalate } from "./actions.js";
import { navList, select, selectedAlert, serverNow, store, subscribe } from "./alerts.js";
import { metric, place, priorityPercent } from "./describe.js";
import { duration, h, setChildren, words } from "./dom.js";
import { every } from "./session.js";
import { keyOf } from "./shortcuts.js";

let els = null; // {queue, inHand, queueCount, inHandCount, toolbar}
let onOpen = () => {};
const rows = new Map(); // alert id -> <li>
let firstRender = true;
let scrolledTo = null; // the selection last scrolled into view

/** Wire the panel (elements from index.html) for a new session; `open(id)` opens an alert's page. */
export function mountQueue(panel, open) {
  onOpen = open;
  rows.clear();
  firstRender = true;
  scrolledTo = null;
  els = {
    queue: panel.querySelector("[data-testid=queue]"),
    inHand: panel.querySelector("[data-testid=in-hand]"),
    queueCount: panel.querySelector("#queue-count"),
    inHandCount: panel.querySelector("#in-hand-count"),
    toolbar: panel.querySelector("#queue-actions"),
  };
  els.queue.replaceChildren();
  els.inHand.replaceChildren();
  setChildren(els.toolbar, toolbarButtons());
  subscribe(render);
  every(1000, refreshAges); // ages tick between pushes
  render();
}

function toolbarButtons() {
  const button = (label, action, fn) =>
    h("button", { type: "button", title: `${label} (${keyOf(action)})`, onclick: () => fn(selectedAlert()) },
      label, " ", h("kbd", {}, keyOf(action)));
  return [
    button("Open", "open", (a) => a && onOpen(a.id)),
    button("Ack", "acknowledge", (a) => acknowledge(a)),
    button("Escalate", "escalate", (a) => escalate(a)),
    button("False", "false_alarm", (a) => closeAlert(a, "false_alarm")),
    button("True", "true_alert", (a) => closeAlert(a, "true_alert")),
    button("Dup", "duplicate", (a) => closeAlert(a, "duplicate")),
  ];
}

function render() {
  if (!els) return;
  const live = new Set(navList().map((a) => a.id));
  for (const [id, row] of rows) {
    if (!live.has(id)) {
      row.remove();
      rows.delete(id);
    }
  }
  fillList(els.queue, store.queue, "queue-row", "The queue is empty");
  fillList(els.inHand, store.inHand, "in-hand-row", "Nothing in hand");
  els.queueCount.textContent = countText(store.queue.length, store.queueTotal);
  els.inHandCount.textContent = countText(store.inHand.length, store.inHandTotal);
  document.title = store.queueTotal ? `(${store.queueTotal}) Alerts console` : "Alerts console";
  firstRender = false;
  scrollSelectedIntoView();
}

// "12", or "100 of 340" when the server sent only the highest-ranked.
function countText(shown, total) {
  return total > shown ? `${shown} of ${total}` : String(shown);
}

// Put the rows of `alerts` into `list` in order, reusing existing rows.
function fillList(list, alerts, testid, emptyText) {
  const wanted = alerts.map((alert) => rowFor(alert, testid));
  wanted.forEach((row, i) => {
    if (list.children[i] !== row) list.insertBefore(row, list.children[i] || null);
  });
  while (list.children.length > wanted.length) list.lastElementChild.remove();
  list.classList.toggle("is-empty", wanted.length === 0);
  list.setAttribute("data-empty-text", emptyText);
}

function rowFor(alert, testid) {
  let row = rows.get(alert.id);
  if (!row || row.dataset.testid !== testid) {
    if (row) row.remove(); // moved from the queue to in hand: a fresh row in the other list
    row = h("li", { role: "option", "data-testid": testid, "data-alert-id": alert.id });
    row.addEventListener("click", () => select(alert.id));
    row.addEventListener("dblclick", () => onOpen(alert.id));
    // Rows present at the first render are not "new arrivals": no animation for them. The class
    // goes once played: moving a row re-inserts it, which would replay the animation.
    if (!firstRender) row.classList.add("arrived");
    row.addEventListener("animationend", (e) => {
      if (e.animationName === "arrive") row.classList.remove("arrived");
    });
    rows.set(alert.id, row);
  }
  fillRow(row, alert);
  return row;
}

function fillRow(row, alert) {
  const selected = alert.id === store.selectedId;
  row.dataset.status = alert.status || "";
  row.className = ["alert-row", alert.critical ? "critical" : "", selected ? "selected" : "",
    row.classList.contains("arrived") ? "arrived" : ""].filter(Boolean).join(" ");
  row.setAttribute("aria-selected", String(selected));
  row.dataset.created = String(alert.created_at ?? "");
  // Rebuild the content only when it changed: a click's target must survive a selection change
  // (or a double click would never register), and most pushes change nothing on most rows.
  const signature = JSON.stringify([alert.kind, alert.camera_id, alert.critical, alert.priority, alert.status,
    place(alert), metric(alert)]);
  if (row.signature === signature) return;
  row.signature = signature;
  setChildren(row,
    h("div", { class: "prio-bar", title: `priority ${Number(alert.priority || 0).toFixed(3)}` },
      h("div", { class: "prio-fill", style: { width: `${priorityPercent(alert)}%` } })),
    h("div", { class: "row-main" },
      h("span", { class: "kind" }, alert.critical ? "▲ " : "", words(alert.kind) || "alert"),
      h("span", { class: "camera" }, alert.camera_id ?? "?")),
    h("div", { class: "row-sub" },
      h("span", { class: "place" }, place(alert)),
      h("span", { class: "metric" }, metric(alert)),
      h("span", { class: `status status-${alert.status}` }, words(alert.status)),
      h("span", { class: "age" }, ageText(alert.created_at))));
}

function ageText(createdAt) {
  return typeof createdAt === "number" ? duration(serverNow() - createdAt) : "";
}

function refreshAges() {
  for (const row of rows.values()) {
    const age = row.querySelector(".age");
    const created = Number(row.dataset.created);
    if (age && row.dataset.created !== "" && Number.isFinite(created)) age.textContent = ageText(created);
  }
}

// Only when the selection changed: a push must not undo the operator scrolling the list.
function scrollSelectedIntoView() {
  if (store.selectedId === scrolledTo) return;
  scrolledTo = store.selectedId;
  const row = store.selectedId === null ? null : rows.get(store.selectedId);
  if (row && row.isConnected) row.scrollIntoView({ block: "nearest" });
}
