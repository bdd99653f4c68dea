// DOM building and formatting helpers shared by every view.
//
// Every server string reaches the page through textContent or an attribute set by
// h(): nothing here (or anywhere in the console) assigns innerHTML, so a camera
// name or a comment can never inject markup.

/**
 * Build an element: h("td", {class: "num", "data-testid": "x", onclick: fn}, "text", child, [more]).
 * Props: "class", "text", "style" (an object), on* (listeners), booleans (true sets, false omits),
 * anything else via setAttribute. Children: strings/numbers become text nodes; null/undefined/false skip.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    setProp(el, key, value);
  }
  append(el, children);
  return el;
}

function setProp(el, key, value) {
  if (value === null || value === undefined || value === false) return;
  if (key === "class") el.className = value;
  else if (key === "text") el.textContent = String(value);
  else if (key === "style") Object.assign(el.style, value);
  else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
  else if (Object.hasOwn(PROPERTY_KEYS, key)) el[key] = value;
  else el.setAttribute(key, value === true ? "" : String(value));
}

// Keys set as DOM properties, not attributes (the attribute only sets the initial value).
const PROPERTY_KEYS = { value: 1, checked: 1, disabled: 1, selected: 1, hidden: 1 };

/** Append children (strings, nodes, nested arrays; nullish and false skipped). */
export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace all children of el. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Turn snake_case identifiers into words: "false_alarm" -> "false alarm". */
export function words(value) {
  return value === null || value === undefined ? "" : String(value).replaceAll("_", " ");
}

function isNum(v) {
  return typeof v === "number" && Number.isFinite(v);
}

/** A number at most 3 decimals ("0.418", "12", "1.5"); non-numbers as text; nullish as an em dash. */
export function num(v, digits = 3) {
  if (v === null || v === undefined) return "—";
  if (!isNum(v)) return String(v);
  return Number.isInteger(v) ? String(v) : String(Number(v.toFixed(digits)));
}

/** A ratio in [0, 1] as a percentage ("87.5 %"); nullish as an em dash. */
export function pct(v) {
  return isNum(v) ? `${(v * 100).toFixed(1)} %` : "—";
}

const DATE_TIME = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});
const TIME = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

/** Unix seconds -> local date and time; nullish or invalid -> em dash. */
export function localTime(unix) {
  return isNum(unix) ? DATE_TIME.format(new Date(unix * 1000)) : "—";
}

/** Unix seconds -> local time of day (HH:MM:SS). */
export function localClock(unix) {
  return isNum(unix) ? TIME.format(new Date(unix * 1000)) : "—";
}

/** A duration in seconds, short: "42 s", "3 min 05 s", "2 h 07 min". */
export function duration(seconds) {
  if (!isNum(seconds)) return "—";
  const s = Math.max(0, seconds);
  if (s < 10) return `${Number(s.toFixed(1))} s`;
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${pad2(Math.floor(s % 60))} s`;
  return `${Math.floor(s / 3600)} h ${pad2(Math.floor((s % 3600) / 60))} min`;
}

function pad2(n) {
  return String(n).padStart(2, "0");
}

/** Any JSON value as short readable text (lists joined, objects as k=v, numbers trimmed). */
export function valueText(v) {
  if (v === null || v === undefined) return "—";
  if (Array.isArray(v)) return v.length ? v.map(valueText).join(", ") : "(none)";
  if (typeof v === "object") {
    return Object.entries(v).map(([k, x]) => `${words(k)}: ${valueText(x)}`).join("; ") || "(none)";
  }
  if (typeof v === "boolean") return v ? "yes" : "no";
  return num(v);
}

/** A list of labels counted: ["person", "person", "car"] -> "person × 2, car". */
export function countedList(values) {
  if (!Array.isArray(values)) return values;
  const counts = new Map();
  values.forEach((v) => counts.set(valueText(v), (counts.get(valueText(v)) || 0) + 1));
  return [...counts].map(([label, n]) => (n > 1 ? `${label} × ${n}` : label)).join(", ") || "(none)";
}

/** A table from column specs [{label, value: row => text|Node, class?}] and rows. */
export function table(columns, rows, { testid, rowProps } = {}) {
  const head = h("tr", {}, columns.map((c) => h("th", { class: c.class, scope: "col" }, c.label)));
  const body = rows.map((row) =>
    h("tr", rowProps ? rowProps(row) : {}, columns.map((c) => h("td", cellProps(c, row), c.value(row)))));
  return h("table", { class: "data", "data-testid": testid },
    h("thead", {}, head), h("tbody", {}, body.length ? body : emptyRow(columns.length)));
}

function cellProps(column, row) {
  return { class: column.class, ...(column.props ? column.props(row) : {}) };
}

function emptyRow(span) {
  return h("tr", { class: "empty" }, h("td", { colspan: span }, "No data"));
}

/** A two-column key/value table for an object (evidence, settings). */
export function kvTable(obj, testid) {
  const entries = obj && typeof obj === "object" ? Object.entries(obj) : [];
  return table(
    [{ label: "Name", value: ([k]) => words(k) }, { label: "Value", value: ([, v]) => valueText(v) }],
    entries, { testid });
}

/**
 * A URL from the server that is safe to put in src/href: same-origin http(s) only.
 * Returns null otherwise (the console is offline; an outside URL is a misconfiguration).
 */
export function safeUrl(raw) {
  if (typeof raw !== "string" || !raw) return null;
  try {
    const url = new URL(raw, document.baseURI);
    return url.origin === location.origin && /^https?:$/.test(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

/** Unix seconds -> the value of a local <input type="datetime-local" step="1"> ("2024-05-01T09:30:00"). */
export function dateTimeValue(unix) {
  const d = new Date(unix * 1000);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}T${pad2(d.getHours())}:`
    + `${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** A datetime-local value ("2024-05-01T09:30" or with ":ss") -> Unix seconds of that local time; NaN if invalid. */
export function parseDateTime(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/.exec(String(value || ""));
  if (!m) return NaN;
  const [y, mo, d, hh, mm, ss] = m.slice(1).map((v) => Number(v || 0));
  return new Date(y, mo - 1, d, hh, mm, ss).getTime() / 1000;
}
