// Requisitions (supervisor and above): a judicial or police request for recorded video.
// Recording one holds its cameras' segments over its range at once (kept beyond retention);
// the detail shows the held segments and the export (one watermarked clip per camera and a
// signed manifest); releasing the hold is a logged act, confirmed first. All audited.
//
// A reference may contain "/", so it travels in the query string or the body, never the path.

import { api, apiUrl, post } from "./api.js";
import { confirmAction } from "./dialogs.js";
import { duration, h, localTime, setChildren, table, valueText } from "./dom.js";
import { playAt } from "./recordings.js";
import { rangeInputs } from "./timeline.js";
import { toast, toastError } from "./toast.js";

let parts = null; // {list, detail, form: {...}}
let loaded = false;
let shown = null; // the reference in the detail panel
let exporting = null; // the reference being exported

/** Build the view into its container (per session; data loads when first shown). */
export function mountRequisitions(container) {
  parts = { list: h("div"), detail: h("div", { class: "requisition-detail", "data-testid": "requisition-detail" }) };
  loaded = false;
  shown = null;
  exporting = null;
  setChildren(container,
    h("section", { class: "audit-section" }, h("h2", {}, "Requisitions"), parts.list),
    h("section", { class: "audit-section" }, parts.detail),
    h("section", { class: "audit-section" }, h("h2", {}, "Record a requisition"), requisitionForm()));
}

export function showRequisitions() {
  if (parts && !loaded) {
    loaded = true;
    loadList();
    loadCameraOptions();
  }
}

async function loadList() {
  try {
    const rows = await api("api/requisitions");
    setChildren(parts.list, listTable(Array.isArray(rows) ? rows : []));
  } catch (err) {
    setChildren(parts.list, h("p", { class: "error-text" }, err.message));
    toastError(err);
  }
}

function statusText(r) {
  return r.open ? "open (held)" : `released by ${valueText(r.released_by)} ${localTime(r.released_at)}`;
}

function listTable(rows) {
  return table([
    { label: "Reference", value: (r) => h("strong", {}, valueText(r.reference)) },
    { label: "Authority", value: (r) => valueText(r.authority) },
    { label: "Officer", value: (r) => valueText(r.officer) },
    { label: "Cameras", value: (r) => valueText(r.cameras) },
    { label: "Range", value: (r) => `${localTime(r.start)} → ${localTime(r.end)}` },
    { label: "Recorded by", value: (r) => `${valueText(r.created_by)}, ${localTime(r.created_at)}` },
    { label: "Status", value: (r) => h("span", { class: r.open ? "badge badge-hold" : "badge" }, statusText(r)) },
    { label: "", value: (r) => h("button", { type: "button", onclick: () => openDetail(r.reference) }, "Details") },
  ], rows.filter((r) => r && r.reference !== undefined), {
    testid: "requisitions-table",
    rowProps: (r) => ({ "data-testid": "requisition-row", "data-reference": r.reference,
      class: r.reference === shown ? "current-row" : "" }),
  });
}

// ---- the form ----------------------------------------------------------------------------

let form = null;

function requisitionForm() {
  const text = (name, label, extra = {}) => h("input", { type: "text", name, required: true, maxlength: "200",
    "data-testid": `requisition-${name}`, "aria-label": label, ...extra });
  form = {
    reference: text("reference", "Reference", { maxlength: "64", placeholder: "e.g. PV-2024/0153",
      pattern: "[A-Za-z0-9][A-Za-z0-9_.\\/\\-]{0,63}", // the server's REFERENCE_RE
      title: "Letters, digits, '_', '.', '/', '-' (no space), starting with a letter or digit" }),
    authority: text("authority", "Authority", { placeholder: "court, prosecutor, police unit" }),
    officer: text("officer", "Officer", { placeholder: "name and rank of the requesting officer" }),
    reason: h("textarea", { name: "reason", required: true, maxlength: "2000", rows: "2", "aria-label": "Reason",
      "data-testid": "requisition-reason" }),
    cameras: h("select", { multiple: true, required: true, size: "5", "aria-label": "Cameras",
      "data-testid": "requisition-cameras" }),
    range: rangeInputs({ testids: { since: "requisition-start", until: "requisition-end" } }),
    submit: h("button", { type: "submit", class: "primary", "data-testid": "requisition-submit" }, "Record and hold"),
  };
  const field = (label, input) => h("label", { class: "field" }, label, input);
  return h("form", { class: "grid-form", "data-testid": "requisition-form", onsubmit: submitRequisition },
    field("Reference", form.reference), field("Authority", form.authority), field("Officer", form.officer),
    field("Cameras (Ctrl-click for several)", form.cameras),
    field("From", form.range.since), field("To", form.range.until),
    h("label", { class: "field wide" }, "Reason", form.reason),
    h("div", { class: "buttons wide" }, form.submit,
      h("span", { class: "muted" }, "The cameras' segments over this range are held at once; recording it is audited.")));
}

async function loadCameraOptions() {
  try {
    const cameras = await api("api/cameras");
    setChildren(form.cameras, (Array.isArray(cameras) ? cameras : []).filter((c) => c && c.id !== undefined)
      .map((c) => h("option", { value: String(c.id) }, String(c.id))));
  } catch (err) {
    toastError(err);
  }
}

async function submitRequisition(event) {
  event.preventDefault();
  let span;
  try {
    span = form.range.read();
  } catch (err) {
    toastError(err);
    return;
  }
  const cameras = [...form.cameras.selectedOptions].map((o) => o.value);
  if (!cameras.length) {
    toast("Choose at least one camera");
    form.cameras.focus();
    return;
  }
  const body = { reference: form.reference.value.trim(), authority: form.authority.value.trim(),
    officer: form.officer.value.trim(), reason: form.reason.value.trim(), cameras, start: span.since, end: span.until };
  form.submit.disabled = true;
  try {
    const created = await post("api/requisitions", body);
    toast(`Requisition ${created.reference} recorded; its segments are held`, "info");
    [form.reference, form.authority, form.officer, form.reason].forEach((input) => { input.value = ""; });
    [...form.cameras.options].forEach((o) => { o.selected = false; });
    shown = created.reference;
    await Promise.all([loadList(), openDetail(created.reference)]);
  } catch (err) {
    toastError(err);
  } finally {
    form.submit.disabled = false;
  }
}

// ---- the detail panel --------------------------------------------------------------------

async function openDetail(reference) {
  shown = reference;
  document.querySelectorAll("[data-testid=requisition-row]").forEach((row) =>
    row.classList.toggle("current-row", row.dataset.reference === reference));
  try {
    const detail = await api("api/requisitions/detail", { query: { reference } });
    if (shown === reference) renderDetail(detail);
  } catch (err) {
    setChildren(parts.detail, h("p", { class: "error-text" }, err.message));
    toastError(err);
  }
}

function renderDetail(r) {
  const files = h("div", { class: "export-files" });
  renderFiles(files, r.reference, r.export_files);
  const busy = exporting === r.reference;
  // An export is made once (the server refuses to overwrite one): with its files listed, the button says so.
  const done = Array.isArray(r.export_files) && r.export_files.length > 0;
  const exportButton = h("button", { type: "button", class: "primary", "data-testid": "requisition-export",
    disabled: exporting !== null || done || !r.open, "aria-busy": busy ? "true" : null,
    title: exportTitle(r, busy, done) }, busy ? "Exporting…" : done ? "Exported" : "Export");
  exportButton.addEventListener("click", () => runExport(r.reference, exportButton, files));
  if (busy) setChildren(files, h("p", { class: "muted progress" }, "Export running…"));
  const release = h("button", { type: "button", class: "danger", "data-testid": "requisition-release", disabled: !r.open,
    onclick: () => releaseHold(r.reference) }, r.open ? "Release hold…" : "Hold released");
  setChildren(parts.detail,
    h("h2", {}, `Requisition ${r.reference}`),
    h("p", {}, h("span", { class: r.open ? "badge badge-hold" : "badge" }, statusText(r)), " ",
      `${valueText(r.authority)}, ${valueText(r.officer)} · ${localTime(r.start)} → ${localTime(r.end)} · `
      + `recorded by ${valueText(r.created_by)} ${localTime(r.created_at)}`),
    h("p", { class: "requisition-reason" }, h("strong", {}, "Reason: "), valueText(r.reason)),
    h("div", { class: "buttons" }, exportButton, release),
    h("h3", {}, "Export files"), files,
    h("h3", {}, "Held segments"), segmentsTable(Array.isArray(r.segments) ? r.segments : []));
}

function exportTitle(r, busy, done) {
  if (busy) return "Writing the clips and the signed manifest";
  if (exporting !== null) return `The export of ${exporting} is running`;
  if (done) return "Exported: the files are listed below";
  if (!r.open) return "Released: its footage is no longer held";
  return "One watermarked clip per camera and a signed manifest";
}

function segmentsTable(segments) {
  return table([
    { label: "Camera", value: (s) => valueText(s.camera_id) },
    { label: "From", value: (s) => localTime(s.wall_start) },
    { label: "To", value: (s) => localTime(s.wall_end) },
    { label: "Length", class: "num", value: (s) => duration(s.wall_end - s.wall_start) },
    { label: "Size", class: "num", value: (s) => fileSize(s.bytes) },
    { label: "Held", value: (s) => (s.held ? "held" : "no") },
    { label: "", value: (s) => h("button", { type: "button", onclick: () => playAt(s.camera_id, s.wall_start) }, "Play") },
  ], segments, { testid: "requisition-segments", rowProps: (s) => ({ "data-segment-id": s.id }) });
}

function fileSize(bytes) {
  if (typeof bytes !== "number") return "—";
  return bytes < 1e6 ? `${Math.ceil(bytes / 1e3)} kB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

function renderFiles(container, reference, names) {
  const list = Array.isArray(names) ? names.filter((n) => typeof n === "string" && n) : [];
  setChildren(container, list.length
    ? h("ul", { class: "file-list" }, list.map((name) => h("li", {}, h("a", {
      href: apiUrl("api/requisitions/export-file", { reference, name }), download: name, "data-testid": "export-file",
    }, name))))
    : h("p", { class: "muted" }, "Not exported yet."));
}

// An export may take minutes (a clip per camera): one at a time, its button says so meanwhile.
async function runExport(reference, button, files) {
  if (exporting !== null) return;
  exporting = reference;
  button.disabled = true;
  button.textContent = "Exporting…";
  button.setAttribute("aria-busy", "true");
  setChildren(files, h("p", { class: "muted progress", "data-testid": "export-progress" },
    "Writing the watermarked clips and the signed manifest…"));
  try {
    const result = await post("api/requisitions/export", { reference });
    const count = result && Array.isArray(result.files) ? result.files.length : 0;
    toast(`Requisition ${reference} exported (${count} files)`, "info");
  } catch (err) {
    toastError(err);
  } finally {
    exporting = null;
    if (shown !== null) await openDetail(shown); // the files as the server lists them, the button back
  }
}

async function releaseHold(reference) {
  const ok = await confirmAction({
    title: `Release the hold of requisition ${reference}?`,
    text: ["Its segments will no longer be kept beyond retention: once released, they may be deleted.",
      "This is a logged act: your name and the time are recorded in the audit log."],
    confirm: "Release hold",
  });
  if (!ok) return;
  try {
    await post("api/requisitions/release", { reference });
    toast(`Hold of requisition ${reference} released`, "info");
    await Promise.all([loadList(), openDetail(reference)]);
  } catch (err) {
    toastError(err);
  }
}
