// Short texts that describe an alert, shared by the queue rows, the banner and the alert page.
// Every field may be missing (an older server, a rule without zones): nothing here throws.

import { num, words } from "./dom.js";

/** "zone plaza" / "line north-gate" / "" */
export function place(alert) {
  if (alert.zone_id !== null && alert.zone_id !== undefined && alert.zone_id !== "") return `zone ${alert.zone_id}`;
  if (alert.line_id !== null && alert.line_id !== undefined && alert.line_id !== "") return `line ${alert.line_id}`;
  return "";
}

/** The group size for gatherings (evidence group_size, max_size or size), else null. */
export function groupSize(alert) {
  const ev = alert.evidence && typeof alert.evidence === "object" ? alert.evidence : {};
  for (const key of ["group_size", "max_size", "size"]) {
    if (typeof ev[key] === "number" && Number.isFinite(ev[key])) return ev[key];
  }
  return null;
}

/** "group 7" when the alert has a group size, else "score 0.82". */
export function metric(alert) {
  const size = groupSize(alert);
  if (size !== null) return `group ${num(size, 0)}`;
  return typeof alert.score === "number" ? `score ${num(alert.score, 2)}` : "";
}

/** "gathering · cam-3 · zone plaza" */
export function title(alert) {
  return [words(alert.kind) || "alert", alert.camera_id, place(alert)].filter(Boolean).join(" · ");
}

/** Priority as a 0-100 width for the rank bar. */
export function priorityPercent(alert) {
  const p = Number(alert.priority);
  return Number.isFinite(p) ? Math.round(Math.min(1, Math.max(0, p)) * 100) : 0;
}
