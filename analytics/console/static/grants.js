// Admin: the police relay grants. A grant lets one police account see some cameras live (and,
// if "recorded", their recordings) from its start to its end; revoking ends it at once. The
// server audits both. Police accounts are made in the user form above (role "police").

import { api, post } from "./api.js";
import { confirmAction } from "./dialogs.js";
import { dateTimeValue, h, localTime, parseDateTime, setChildren, table, valueText } from "./dom.js";
import { toast, toastError } from "./toast.js";

const DEFAULT_HOURS = 8;

let parts = null; // {list, form: {...}}
let police = []; // police account names, from the users table

/** Build the grants section into its container (per session). */
export function mountGrants(container) {
  parts = { list: h("div"), form: grantForm() };
  police = [];
  setChildren(container, parts.list, h("h3", { class: "form-title" }, "Grant cameras to a police account"), parts.form.el);
}

/** The police accounts a grant may name (the admin view calls this whenever it loads the users). */
export function setPoliceAccounts(names) {
  if (!parts) return;
  police = names;
  const { user, submit } = parts.form;
  const chosen = user.value;
  setChildren(user, names.length ? names.map((n) => h("option", { value: n }, n))
    : h("option", { value: "" }, "no police account: add one above, role police"));
  if (names.includes(chosen)) user.value = chosen;
  user.disabled = !names.length;
  submit.disabled = !names.length;
}

export async function loadGrants() {
  if (!parts) return;
  loadCameraOptions();
  try {
    const grants = await api("api/relay/grants");
    setChildren(parts.list, grantsTable(Array.isArray(grants) ? grants : []));
  } catch (err) {
    setChildren(parts.list, h("p", { class: "error-text" }, err.message));
    toastError(err);
  }
}

function grantState(g, now) {
  if (g.revoked_at !== null && g.revoked_at !== undefined) {
    return ["revoked", `revoked by ${valueText(g.revoked_by)} ${localTime(g.revoked_at)}`];
  }
  if (now < g.start) return ["scheduled", "scheduled"];
  if (now >= g.end) return ["ended", "ended"];
  return ["active", "active"];
}

function grantsTable(grants) {
  const now = Date.now() / 1000;
  return table([
    { label: "Police account", value: (g) => h("strong", {}, valueText(g.username)) },
    { label: "Cameras", value: (g) => valueText(g.cameras) },
    { label: "From", value: (g) => localTime(g.start) },
    { label: "Until", value: (g) => localTime(g.end) },
    { label: "Recordings", value: (g) => (g.recorded ? "yes" : "live only") },
    { label: "Granted by", value: (g) => `${valueText(g.granted_by)}, ${localTime(g.granted_at)}` },
    { label: "State", value: (g) => {
      const [state, text] = grantState(g, now);
      return h("span", { class: `badge grant-${state}`, "data-testid": "grant-state", "data-state": state }, text);
    } },
    { label: "", value: (g) => {
      const [state] = grantState(g, now);
      return h("button", { type: "button", class: "danger", "data-testid": "grant-revoke",
        disabled: state === "revoked" || state === "ended", onclick: () => revoke(g) }, "Revoke…");
    } },
  ], grants.filter((g) => g && g.id !== undefined), {
    testid: "grants-table", rowProps: (g) => ({ "data-testid": "grant-row", "data-grant-id": g.id }),
  });
}

async function revoke(grant) {
  const ok = await confirmAction({
    title: `Revoke grant ${grant.id} of ${grant.username}?`,
    text: [`${grant.username} loses the sight of ${valueText(grant.cameras)} at once.`,
      "This is a logged act: your name and the time are recorded in the audit log."],
    confirm: "Revoke",
  });
  if (!ok) return;
  try {
    await post(`api/relay/grants/${encodeURIComponent(grant.id)}/revoke`);
    toast(`Grant ${grant.id} of ${grant.username} revoked`, "info");
    loadGrants();
  } catch (err) {
    toastError(err);
  }
}

// ---- the form ----------------------------------------------------------------------------

function localInput(testid, label) {
  return h("input", { type: "datetime-local", step: "1", required: true, "data-testid": testid, "aria-label": label });
}

function grantForm() {
  const f = {
    user: h("select", { required: true, "aria-label": "Police account", "data-testid": "grant-user", disabled: true },
      h("option", { value: "" }, "loading…")),
    cameras: h("select", { multiple: true, required: true, size: "4", "aria-label": "Cameras",
      "data-testid": "grant-cameras" }),
    start: localInput("grant-start", "From"),
    end: localInput("grant-end", "Until"),
    recorded: h("input", { type: "checkbox", "data-testid": "grant-recorded" }),
    submit: h("button", { type: "submit", class: "primary", "data-testid": "grant-submit", disabled: true }, "Grant"),
  };
  resetTimes(f);
  const field = (label, input) => h("label", { class: "field" }, label, input);
  f.el = h("form", { class: "grid-form", "data-testid": "grant-form", onsubmit: (e) => submitGrant(e, f) },
    field("Police account", f.user), field("Cameras (Ctrl-click for several)", f.cameras),
    field("From", f.start), field("Until", f.end),
    h("label", { class: "check" }, f.recorded, " recordings too (not only live)"),
    h("div", { class: "buttons wide" }, f.submit,
      h("span", { class: "muted" }, "The account sees these cameras only inside this window; every view is audited.")));
  return f;
}

function resetTimes(f) {
  const now = Math.floor(Date.now() / 60000) * 60;
  f.start.value = dateTimeValue(now);
  f.end.value = dateTimeValue(now + DEFAULT_HOURS * 3600);
}

async function loadCameraOptions() {
  const { cameras } = parts.form;
  if (cameras.options.length) return;
  try {
    const list = await api("api/cameras");
    setChildren(cameras, (Array.isArray(list) ? list : []).filter((c) => c && c.id !== undefined)
      .map((c) => h("option", { value: String(c.id) }, String(c.id))));
  } catch (err) {
    toastError(err);
  }
}

async function submitGrant(event, f) {
  event.preventDefault();
  const start = parseDateTime(f.start.value);
  const end = parseDateTime(f.end.value);
  const cameras = [...f.cameras.selectedOptions].map((o) => o.value);
  if (!f.user.value || !police.includes(f.user.value)) return toast("Choose a police account");
  if (!cameras.length) return toast("Choose at least one camera");
  if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) return toast("The end must be after the start");
  f.submit.disabled = true;
  try {
    const grant = await post("api/relay/grants",
      { username: f.user.value, cameras, start, end, recorded: f.recorded.checked });
    toast(`Grant ${grant.id}: ${grant.username} may see ${valueText(grant.cameras)} until ${localTime(grant.end)}`, "info");
    [...f.cameras.options].forEach((o) => { o.selected = false; });
    f.recorded.checked = false;
    resetTimes(f);
    loadGrants();
  } catch (err) {
    toastError(err);
  } finally {
    f.submit.disabled = !police.length;
  }
}
