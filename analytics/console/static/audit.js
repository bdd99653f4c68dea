// The supervisor's audit: alert precision, acknowledgement times, operator load, plots,
// exports and the action log, over a date range (default: the last 7 days); and closed
// alerts, whose page is where a verdict is reviewed or a legal hold set. The action log is a
// hash chain: its state (intact, or what is wrong) heads the view, and it exports as CSV.
//
// Dates are local calendar days: "since" is the start of its day, "until" the end of its
// day (both inclusive), sent as Unix seconds.

import { openAlertPage } from "./alert-page.js";
import { api, apiUrl } from "./api.js";
import { place } from "./describe.js";
import { duration, h, localTime, num, pct, setChildren, table, valueText, words } from "./dom.js";
import { onEnd } from "./session.js";
import { toastError } from "./toast.js";

const GROUPS = ["rule", "camera", "zone", "shift", "day", "kind", "operator"];
const PLOTS = [
  ["precision_by_rule", "Precision by rule"], ["precision_by_camera", "Precision by camera"],
  ["precision_by_day", "Precision by day"], ["ack_times", "Acknowledgement times"],
  ["alerts_by_shift", "Alerts by shift"],
];

const CLOSED_LIMIT = 200;

let root = null;
let form = null; // {since, until, by, logUser, logAction}
let parts = null;

/** Build the audit view into its container (per session; data loads when the view is first shown). */
export function mountAudit(container) {
  root = container;
  form = {
    since: h("input", { type: "date", required: true, "data-testid": "audit-since" }),
    until: h("input", { type: "date", required: true, "data-testid": "audit-until" }),
    by: h("select", { "data-testid": "audit-by" }, GROUPS.map((g) => h("option", { value: g }, g))),
    logUser: h("input", { type: "text", placeholder: "user", "aria-label": "Log user" }),
    logAction: h("input", { type: "text", placeholder: "action", "aria-label": "Log action" }),
  };
  const today = new Date();
  form.until.value = dateValue(today);
  form.since.value = dateValue(new Date(today.getFullYear(), today.getMonth(), today.getDate() - 6));
  parts = Object.fromEntries(["chain", "precision", "ack", "load", "plots", "exports", "closed", "log", "logExport"]
    .map((k) => [k, h("div")]));
  setChildren(root, controls(), section("Audit log chain", parts.chain),
    section("Precision", parts.precision), section("Acknowledgement times", parts.ack),
    section("Operator load", parts.load), section("Plots", parts.plots), section("Exports", parts.exports),
    section("Closed alerts (the highest-ranked; open one to review its verdict or set a legal hold)", parts.closed),
    section("Audit log", logControls(), parts.logExport, parts.log));
  root.dataset.loaded = "";
  // A review or a legal hold changes a closed alert: the precision tables and the list must show it.
  const onChanged = (event) => {
    if (root.dataset.loaded && event.detail && event.detail.status === "closed") refresh();
  };
  document.addEventListener("alert-changed", onChanged);
  onEnd(() => document.removeEventListener("alert-changed", onChanged));
}

/** Load the data the first time the view is shown (later: the Refresh button). */
export function showAudit() {
  if (root && !root.dataset.loaded) {
    root.dataset.loaded = "1";
    refresh();
  }
}

function section(title, ...content) {
  return h("section", { class: "audit-section" }, h("h2", {}, title), content);
}

function controls() {
  const submit = (e) => {
    e.preventDefault();
    refresh();
  };
  return h("form", { class: "audit-controls", onsubmit: submit },
    h("label", {}, "Since ", form.since), h("label", {}, "Until ", form.until),
    h("label", {}, "Group by ", form.by),
    h("button", { type: "submit", class: "primary" }, "Refresh"));
}

function logControls() {
  const submit = (e) => {
    e.preventDefault();
    loadLog();
  };
  return h("form", { class: "audit-controls", onsubmit: submit },
    form.logUser, form.logAction, h("button", { type: "submit" }, "Filter log"));
}

function dateValue(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

// "2024-05-01" -> Unix seconds of local midnight starting that day (+ dayOffset days).
function dayStart(value, dayOffset = 0) {
  const [y, m, d] = value.split("-").map(Number);
  return Math.floor(new Date(y, m - 1, d + dayOffset).getTime() / 1000);
}

function range() {
  if (!form.since.value || !form.until.value) throw new Error("Choose both dates");
  const since = dayStart(form.since.value);
  const until = dayStart(form.until.value, 1); // the end of the "until" day
  if (until <= since) throw new Error("“Until” must not be before “Since”");
  return { since, until };
}

async function refresh() {
  let span;
  try {
    span = range();
  } catch (err) {
    toastError(err);
    return;
  }
  const by = form.by.value;
  renderPlots(span);
  renderExports(span);
  renderLogExport(span);
  await Promise.all([
    loadChain(),
    load(parts.precision, "api/audit/precision", { by, ...span }, precisionTable),
    load(parts.ack, "api/audit/ack-times", { by, ...span }, ackTable),
    load(parts.load, "api/audit/operator-load", span, loadTable),
    loadClosed(),
    loadLog(),
  ]);
}

// Fetch one table; a failure shows in its section (and as a toast), the others still load.
async function load(target, path, query, render) {
  setChildren(target, h("p", { class: "muted" }, "Loading…"));
  try {
    const rows = await api(path, { query });
    setChildren(target, render(Array.isArray(rows) ? rows : []));
  } catch (err) {
    setChildren(target, h("p", { class: "error-text" }, err.message));
    toastError(err);
  }
}

function precisionTable(rows) {
  return table([
    { label: words(form.by.value), value: (r) => valueText(r.key) },
    { label: "Alerts", class: "num", value: (r) => num(r.alerts) },
    { label: "Reviewed", class: "num", value: (r) => num(r.reviewed) },
    { label: "True", class: "num", value: (r) => num(r.true_alerts) },
    { label: "False alarms", class: "num", value: (r) => num(r.false_alarms) },
    { label: "Duplicates", class: "num", value: (r) => num(r.duplicates) },
    { label: "Unreviewed", class: "num", value: (r) => num(r.unreviewed) },
    {
      label: "Precision", class: "num", value: (r) => pct(r.precision),
      props: (r) => ({ "data-testid": "precision-value", "data-value": r.precision ?? "" }),
    },
  ], rows, {
    testid: "audit-precision",
    rowProps: (r) => ({ "data-testid": "precision-row", "data-key": r.key ?? "" }),
  });
}

function ackTable(rows) {
  return table([
    { label: words(form.by.value), value: (r) => valueText(r.key) },
    { label: "Count", class: "num", value: (r) => num(r.count) },
    { label: "Median", class: "num", value: (r) => duration(r.p50) },
    { label: "90th percentile", class: "num", value: (r) => duration(r.p90) },
    { label: "Mean", class: "num", value: (r) => duration(r.mean) },
    { label: "Max", class: "num", value: (r) => duration(r.max) },
  ], rows, { testid: "audit-ack-times" });
}

// The "all" row carries alerts_per_operator_hour instead of the per-user figures.
function loadTable(rows) {
  return table([
    { label: "Operator", value: (r) => (r.user === "all" ? "All operators" : valueText(r.user)) },
    { label: "Hours on duty", class: "num", value: (r) => num(r.hours_on_duty, 1) },
    { label: "Alerts handled", class: "num", value: (r) => num(r.alerts_handled) },
    { label: "Handled / hour", class: "num", value: (r) => num(r.handled_per_hour, 2) },
    { label: "Alerts / operator-hour", class: "num", value: (r) => (r.user === "all" ? num(r.alerts_per_operator_hour, 2) : "") },
  ], rows, { testid: "audit-operator-load", rowProps: (r) => ({ class: r.user === "all" ? "total" : "" }) });
}

function loadClosed() {
  return load(parts.closed, "api/alerts", { status: "closed", limit: CLOSED_LIMIT }, closedTable);
}

function closedTable(rows) {
  return table([
    { label: "Alert", class: "num", value: (a) => valueText(a.id) },
    { label: "Camera", value: (a) => valueText(a.camera_id) },
    { label: "Kind", value: (a) => words(a.kind) },
    { label: "Place", value: (a) => place(a) || "—" },
    { label: "Verdict", value: (a) => words(a.verdict) || "—" },
    { label: "Closed", value: (a) => localTime(a.updated_at) },
    { label: "Hold", value: (a) => (a.legal_hold ? "legal hold" : "") },
    { label: "", value: (a) => h("button", { type: "button", onclick: () => openAlertPage(a.id) }, "Open") },
  ], rows.filter((a) => a && a.id !== undefined), {
    testid: "closed-alerts", rowProps: (a) => ({ "data-testid": "closed-row", "data-alert-id": a.id }),
  });
}

function renderPlots(span) {
  const stamp = Date.now(); // a refresh must not show the browser's cached plot
  setChildren(parts.plots, h("div", { class: "plots" }, PLOTS.map(([name, label]) => {
    const img = h("img", { alt: label, loading: "lazy", src: apiUrl(`api/audit/plots/${name}.png`, { ...span, _: stamp }) });
    img.addEventListener("error", () => img.replaceWith(h("p", { class: "muted" }, `${label}: unavailable`)));
    return h("figure", { class: "plot" }, img, h("figcaption", {}, label));
  })));
}

function renderExports(span) {
  const link = (ext, label) => h("a", {
    class: "button", href: apiUrl(`api/audit/export.${ext}`, span), download: `alerts-audit.${ext}`,
    "data-testid": `export-${ext}`,
  }, label);
  setChildren(parts.exports, h("div", { class: "buttons" }, link("csv", "Download CSV"), link("parquet", "Download Parquet")),
    h("p", { class: "muted" }, "The alerts of the chosen period."));
}

// The chain of the action log: each entry hashes the one before, so an entry changed or deleted in the
// database breaks it from there on.
async function loadChain() {
  setChildren(parts.chain, h("p", { class: "muted" }, "Checking…"));
  try {
    const chain = (await api("api/audit/chain")) || {};
    const problems = Array.isArray(chain.problems) ? chain.problems : [];
    const intact = chain.intact === true && !problems.length;
    setChildren(parts.chain, h("div", {
      class: intact ? "chain chain-intact" : "chain chain-broken", "data-testid": "audit-chain",
      "data-intact": String(intact), role: intact ? "status" : "alert",
    }, intact
      ? h("strong", {}, `✔ intact (${num(chain.entries)} entries)`)
      : [h("strong", {}, `✖ BROKEN: ${problems.length} problem${problems.length === 1 ? "" : "s"} `
          + `in ${num(chain.entries)} entries`),
        h("ul", {}, problems.map((p) => h("li", {}, valueText(p))))]));
  } catch (err) {
    setChildren(parts.chain, h("p", { class: "error-text" }, err.message));
    toastError(err);
  }
}

function renderLogExport(span) {
  setChildren(parts.logExport, h("div", { class: "buttons" },
    h("a", { class: "button", href: apiUrl("api/audit/log/export.csv", span), download: "audit-log.csv",
      "data-testid": "audit-log-export" }, "Download the audit log (CSV)"),
    h("span", { class: "muted" }, "The entries of the chosen period, with their chain hashes.")));
}

async function loadLog() {
  const query = { limit: 200, user: form.logUser.value.trim(), action: form.logAction.value.trim() };
  await load(parts.log, "api/audit/log", query, (rows) => table([
    { label: "When", value: (r) => localTime(r.at) },
    { label: "User", value: (r) => valueText(r.user) },
    { label: "Action", value: (r) => words(r.action) },
    { label: "Target", value: (r) => valueText(r.target) },
    { label: "Details", value: (r) => (r.details && typeof r.details === "object" ? JSON.stringify(r.details) : valueText(r.details)) },
  ], rows, { testid: "audit-log" }));
}
