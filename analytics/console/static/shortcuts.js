// The keyboard map, declared once: the help overlay lists it and buttons show their key from it.
// The handling itself lives in keys.js (global) and alert-page.js / dialogs.js (inside overlays).

export const SHORTCUTS = [
  { keys: ["j", "↓"], action: "next", text: "Select the next alert" },
  { keys: ["k", "↑"], action: "previous", text: "Select the previous alert" },
  { keys: ["Enter", "o"], action: "open", text: "Open the selected alert (marks a new alert as seen)" },
  { keys: ["a"], action: "acknowledge", text: "Acknowledge: you are handling it (moves it to In hand)" },
  { keys: ["e"], action: "escalate", text: "Escalate to an authority (1-9 or ↑↓ + Enter to choose)" },
  { keys: ["f"], action: "false_alarm", text: "Close as false alarm" },
  { keys: ["t"], action: "true_alert", text: "Close as true alert" },
  { keys: ["d"], action: "duplicate", text: "Close as duplicate" },
  { keys: ["m"], action: "mute", text: "Mute / unmute the critical-alert sound" },
  { keys: ["?"], action: "help", text: "Show this help" },
  { keys: ["Esc"], action: "close", text: "Close the dialog or the alert page" },
];

/** The first key of an action, for button labels: keyOf("acknowledge") -> "a". */
export function keyOf(action) {
  const entry = SHORTCUTS.find((s) => s.action === action);
  return entry ? entry.keys[0] : "";
}
