// The operator's alert lists and the keyboard selection, kept in one place.
//
// The server is the source of truth: every WebSocket push (or REST poll while the
// socket is down) replaces both lists. Between pushes, an action's response is
// applied at once (applyAlert) so the row moves without waiting for the next push.
// The selection follows the alert id, not the row index, so a new alert ranked
// above the selected one never moves the operator's cursor to another incident.

const OPEN = new Set(["new", "seen"]);
const IN_HAND = new Set(["acknowledged", "escalated"]);

export const store = {
  queue: [], // new + seen, ranked by priority (server order)
  inHand: [], // acknowledged + escalated
  queueTotal: 0, // the server pushes the highest-ranked alerts only; these count them all
  inHandTotal: 0,
  selectedId: null,
  clockOffset: 0, // server clock minus browser clock, seconds (ages use the server's "now")
};

let lastSelectedIndex = 0;
const subscribers = new Set();

/** Call fn() after any change to the lists or the selection. Returns an unsubscribe function. */
export function subscribe(fn) {
  subscribers.add(fn);
  return () => subscribers.delete(fn);
}

function changed() {
  subscribers.forEach((fn) => fn());
}

/** Current server time, unix seconds (browser clock corrected by the last push's "now"). */
export function serverNow() {
  return Date.now() / 1000 + store.clockOffset;
}

/** Queue rows then in-hand rows: the order j/k walk through. */
export function navList() {
  return [...store.queue, ...store.inHand];
}

/** The alert with this id from either list, or null. */
export function findAlert(id) {
  return navList().find((a) => a.id === id) || null;
}

export function selectedAlert() {
  return store.selectedId === null ? null : findAlert(store.selectedId);
}

/**
 * Replace both lists (a push or a poll). Options: now (the server's unix time), queueTotal and
 * inHandTotal (the full counts when the lists are cut to the highest-ranked; default: their lengths).
 */
export function setLists(queue, inHand, { now, queueTotal, inHandTotal } = {}) {
  store.queue = validAlerts(queue);
  store.inHand = validAlerts(inHand);
  store.queueTotal = countOr(queueTotal, store.queue.length);
  store.inHandTotal = countOr(inHandTotal, store.inHand.length);
  if (typeof now === "number" && Number.isFinite(now)) store.clockOffset = now - Date.now() / 1000;
  keepSelection();
  changed();
}

function countOr(total, length) {
  return Number.isInteger(total) && total >= length ? total : length;
}

// Drop anything without an id: one malformed record must not break the list.
function validAlerts(list) {
  return Array.isArray(list) ? list.filter((a) => a && a.id !== undefined && a.id !== null) : [];
}

/** Apply one updated alert (an action's response) to the lists, where its status puts it. */
export function applyAlert(alert) {
  if (!alert || alert.id === undefined) return;
  const [wasQueued, wasInHand] = [store.queue.length, store.inHand.length];
  store.queue = store.queue.filter((a) => a.id !== alert.id);
  store.inHand = store.inHand.filter((a) => a.id !== alert.id);
  if (OPEN.has(alert.status)) store.queue = byPriority([...store.queue, alert]);
  else if (IN_HAND.has(alert.status)) store.inHand = byPriority([...store.inHand, alert]);
  // Keep the totals in step until the next push brings the server's.
  store.queueTotal = Math.max(store.queue.length, store.queueTotal + store.queue.length - wasQueued);
  store.inHandTotal = Math.max(store.inHand.length, store.inHandTotal + store.inHand.length - wasInHand);
  keepSelection();
  changed();
}

function byPriority(list) {
  return list.sort((a, b) => (Number(b.priority) || 0) - (Number(a.priority) || 0));
}

/** Select an alert by id (null clears). */
export function select(id) {
  store.selectedId = id;
  const index = navList().findIndex((a) => a.id === id);
  if (index >= 0) lastSelectedIndex = index;
  changed();
}

/** Move the selection by `delta` rows (clamped); selects the first row when none is selected. */
export function moveSelection(delta) {
  const list = navList();
  if (!list.length) return null;
  const index = list.findIndex((a) => a.id === store.selectedId);
  const next = index < 0 ? 0 : Math.min(list.length - 1, Math.max(0, index + delta));
  select(list[next].id);
  return list[next];
}

/**
 * The id to select once `id` has been acted on: the next alert in its list, else the
 * previous one, else the first row anywhere. Computed before the action changes the lists.
 */
export function successorOf(id) {
  for (const list of [store.queue, store.inHand]) {
    const i = list.findIndex((a) => a.id === id);
    if (i < 0) continue;
    const neighbour = list[i + 1] || list[i - 1];
    if (neighbour) return neighbour.id;
  }
  const rest = navList().filter((a) => a.id !== id);
  return rest.length ? rest[0].id : null;
}

// After the lists change: keep the selected id if it is still listed; otherwise select
// the row now at its old position (the "next" one), or the first row.
function keepSelection() {
  const list = navList();
  const index = list.findIndex((a) => a.id === store.selectedId);
  if (index >= 0) {
    lastSelectedIndex = index;
    return;
  }
  if (!list.length) {
    store.selectedId = null;
    return;
  }
  const fallback = Math.min(lastSelectedIndex, list.length - 1);
  store.selectedId = list[Math.max(0, fallback)].id;
}

/** Forget everything (logout). */
export function resetStore() {
  store.queue = [];
  store.inHand = [];
  store.queueTotal = 0;
  store.inHandTotal = 0;
  store.selectedId = null;
  store.clockOffset = 0;
  lastSelectedIndex = 0;
  subscribers.clear();
}
