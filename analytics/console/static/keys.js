// The global keyboard handler (the map itself is listed in shortcuts.js).
//
// Order of precedence: Esc closes the top overlay; keys typed into a field stay in the
// field; the top overlay (escalate dialog, alert page...) takes the key if it wants it;
// then the global map, of which only m and ? work while an overlay is open, so that an
// action key never reaches an alert hidden behind a dialog.

import { closeTopModal, modalCount, modalKey } from "./modal.js";

function isTyping(target) {
  if (!(target instanceof Element)) return false;
  return Boolean(target.closest("input, textarea, select, [contenteditable=''], [contenteditable=true]"));
}

// Enter and Space on a focused button or link keep their native meaning (press it).
function isPressable(target, key) {
  return (key === "Enter" || key === " ") && target instanceof Element && Boolean(target.closest("button, a[href]"));
}

/**
 * Install the handler. `handlers`: {enabled(), next, previous, open, acknowledge, escalate,
 * close(verdict), mute, help}, each called with no argument (they act on the selection).
 */
export function installKeys(handlers) {
  document.addEventListener("keydown", (event) => {
    if (!handlers.enabled() || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (handle(event, handlers)) event.preventDefault();
  });
}

function handle(event, handlers) {
  const { key, target } = event;
  if (key === "Escape") return escape(target);
  if (isTyping(target) || isPressable(target, key)) return false;
  if (modalKey(event)) return true;
  const global = globalAction(key, handlers);
  if (!global) return false;
  if (modalCount() > 0 && key !== "m" && key !== "?") return true; // swallowed under an overlay
  // Holding a key down repeats it: fine for moving, never for acting on alerts.
  if (event.repeat && !["next", "previous"].includes(global.name)) return true;
  global.run();
  return true;
}

function escape(target) {
  if (closeTopModal()) return true;
  if (isTyping(target)) {
    target.blur();
    return true;
  }
  return false;
}

function globalAction(key, handlers) {
  const map = {
    j: ["next", handlers.next], ArrowDown: ["next", handlers.next],
    k: ["previous", handlers.previous], ArrowUp: ["previous", handlers.previous],
    Enter: ["open", handlers.open], o: ["open", handlers.open],
    a: ["acknowledge", handlers.acknowledge], e: ["escalate", handlers.escalate],
    f: ["close", () => handlers.close("false_alarm")], t: ["close", () => handlers.close("true_alert")],
    d: ["close", () => handlers.close("duplicate")],
    m: ["mute", handlers.mute], "?": ["help", handlers.help],
  };
  const entry = map[key];
  return entry ? { name: entry[0], run: entry[1] } : null;
}
