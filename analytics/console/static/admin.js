// Administration: console users (role, disabled, password), the police relay grants and each
// rule's alert settings (min_score, cooldown, merge_gap). Every change is sent at once and
// confirmed by a toast; a refused change is undone on screen so the page never shows a state
// the server lacks.

import { api } from "./api.js";
import { h, localTime, num, setChildren, table, valueText } from "./dom.js";
import { loadGrants, mountGrants, setPoliceAccounts } from "./grants.js";
import { openModal } from "./modal.js";
import { session } from "./session.js";
import { toast, toastError } from "./toast.js";

// "police": an outside police station's account, which sees only the cameras granted to it below.
const ROLES = ["police", "operator", "supervisor", "admin"];
const RULE_FIELDS = [
  { key: "min_score", label: "Min score", min: 0, max: 1, step: "any" },
  { key: "cooldown", label: "Cooldown (s)", min: 0, step: "any" },
  { key: "merge_gap", label: "Merge gap (s)", min: 0, step: "any" },
];

let parts = null;
let loaded = false;

/** Build the admin view into its container (per session; data loads when first shown). */
export function mountAdmin(container) {
  parts = { users: h("div"), grants: h("div"), rules: h("div") };
  loaded = false;
  mountGrants(parts.grants);
  setChildren(container,
    h("section", { class: "admin-section" }, h("h2", {}, "Users"), parts.users, addUserForm()),
    h("section", { class: "admin-section" }, h("h2", {}, "Police relay grants"), parts.grants),
    h("section", { class: "admin-section" }, h("h2", {}, "Rule alert settings"), parts.rules));
}

export function showAdmin() {
  if (parts && !loaded) {
    loaded = true;
    loadUsers();
    loadGrants();
    loadRules();
  }
}

async function loadUsers() {
  try {
    const users = await api("api/users");
    const list = Array.isArray(users) ? users : [];
    setChildren(parts.users, usersTable(list));
    setPoliceAccounts(list.filter((u) => u && u.role === "police" && !u.disabled).map((u) => u.username));
  } catch (err) {
    setChildren(parts.users, h("p", { class: "error-text" }, err.message));
    toastError(err);
  }
}

function usersTable(users) {
  return table([
    { label: "User", value: (u) => valueText(u.username) },
    { label: "Role", value: (u) => roleSelect(u) },
    { label: "Disabled", value: (u) => disabledToggle(u) },
    { label: "Created", value: (u) => localTime(u.created_at) },
    { label: "", value: (u) => h("button", { type: "button", onclick: () => resetPassword(u.username) }, "Reset password") },
  ], users, { testid: "users-table", rowProps: (u) => ({ "data-username": u.username }) });
}

async function patchUser(username, change, what) {
  try {
    await api(`api/users/${encodeURIComponent(username)}`, { method: "PATCH", body: change });
    toast(`${username}: ${what}`, "info");
    return true;
  } catch (err) {
    toastError(err);
    return false;
  }
}

function roleSelect(user) {
  const select = h("select", { "aria-label": `Role of ${user.username}`, "data-testid": "user-role-select" },
    ROLES.map((r) => h("option", { value: r, selected: r === user.role }, r)));
  let current = user.role;
  select.addEventListener("change", async () => {
    const ok = await patchUser(user.username, { role: select.value }, `role set to ${select.value}`);
    if (ok) {
      if (current === "police" || select.value === "police") loadUsers(); // the grant form lists police accounts
      current = select.value;
    } else select.value = current;
  });
  return select;
}

function disabledToggle(user) {
  const box = h("input", { type: "checkbox", checked: Boolean(user.disabled), "aria-label": `Disable ${user.username}` });
  if (user.username === session.user) box.title = "This is you: disabling yourself ends your access";
  box.addEventListener("change", async () => {
    const ok = await patchUser(user.username, { disabled: box.checked }, box.checked ? "disabled" : "enabled");
    if (!ok) box.checked = !box.checked;
    else if (user.role === "police") loadUsers();
  });
  return box;
}

function resetPassword(username) {
  const password = h("input", { type: "password", required: true, autocomplete: "new-password" });
  const confirm = h("input", { type: "password", required: true, autocomplete: "new-password" });
  const submit = async (e) => {
    e.preventDefault();
    if (password.value !== confirm.value) {
      toast("The two passwords differ");
      return;
    }
    if (await patchUser(username, { password: password.value }, "password changed")) handle.close();
  };
  const content = h("form", { class: "stack-form", onsubmit: submit },
    h("h2", {}, `New password for ${username}`),
    h("label", { class: "field" }, "Password ", password),
    h("label", { class: "field" }, "Again ", confirm),
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Set password"),
      h("button", { type: "button", onclick: () => handle.close() }, "Cancel ", h("kbd", {}, "Esc"))));
  const handle = openModal(content, { label: "Reset password", testid: "password-dialog" });
  password.focus();
}

function addUserForm() {
  const username = h("input", { type: "text", required: true, autocomplete: "off", "aria-label": "New user name",
    placeholder: "user name" });
  const password = h("input", { type: "password", required: true, autocomplete: "new-password",
    "aria-label": "New user password", placeholder: "password" });
  const role = h("select", { "aria-label": "New user role" },
    ROLES.map((r) => h("option", { value: r, selected: r === "operator" }, r)));
  const submit = async (e) => {
    e.preventDefault();
    try {
      await api("api/users", { method: "POST", body: { username: username.value.trim(), password: password.value,
        role: role.value } });
      toast(`User ${username.value.trim()} added`, "info");
      username.value = "";
      password.value = "";
      loadUsers();
    } catch (err) {
      toastError(err);
    }
  };
  return h("form", { class: "inline-form", "data-testid": "add-user-form", onsubmit: submit },
    h("strong", {}, "Add a user: "), username, password, role, h("button", { type: "submit", class: "primary" }, "Add"));
}

async function loadRules() {
  try {
    const rules = await api("api/rules");
    setChildren(parts.rules, rulesTable(Array.isArray(rules) ? rules : []));
  } catch (err) {
    setChildren(parts.rules, h("p", { class: "error-text" }, err.message));
    toastError(err);
  }
}

function rulesTable(rules) {
  const editors = new Map(rules.map((r) => [r, ruleEditor(r)]));
  return table([
    { label: "Camera", value: (r) => valueText(r.camera_id) },
    { label: "Rule", value: (r) => valueText(r.rule_id) },
    { label: "Kind", value: (r) => valueText(r.kind) },
    { label: "Severity", class: "num", value: (r) => num(r.severity) },
    ...RULE_FIELDS.map((f) => ({ label: f.label, class: "num", value: (r) => editors.get(r).inputs[f.key] })),
    { label: "", value: (r) => editors.get(r).save },
  ], rules, { testid: "rules-table", rowProps: (r) => ({ "data-camera-id": r.camera_id, "data-rule-id": r.rule_id }) });
}

// One rule's inputs and its Save button (enabled once something changed).
function ruleEditor(rule) {
  const settings = rule.settings && typeof rule.settings === "object" ? rule.settings : {};
  const inputs = Object.fromEntries(RULE_FIELDS.map((f) => [f.key, h("input", {
    type: "number", min: f.min, max: f.max, step: f.step, required: true, value: settings[f.key] ?? "",
    "aria-label": `${f.label} of ${rule.camera_id}/${rule.rule_id}`, "data-field": f.key,
  })]));
  const save = h("button", { type: "button", class: "primary", disabled: true }, "Save");
  Object.values(inputs).forEach((input) => input.addEventListener("input", () => {
    save.disabled = false;
  }));
  save.addEventListener("click", () => saveRule(rule, inputs, save));
  return { inputs, save };
}

async function saveRule(rule, inputs, save) {
  const body = {};
  for (const f of RULE_FIELDS) {
    const value = Number(inputs[f.key].value);
    if (inputs[f.key].value === "" || !Number.isFinite(value) || !inputs[f.key].checkValidity()) {
      toast(`${f.label}: enter a number${f.max !== undefined ? ` between ${f.min} and ${f.max}` : ` ≥ ${f.min}`}`);
      inputs[f.key].focus();
      return;
    }
    body[f.key] = value;
  }
  try {
    await api(`api/rules/${encodeURIComponent(rule.camera_id)}/${encodeURIComponent(rule.rule_id)}`,
      { method: "PUT", body });
    save.disabled = true;
    toast(`Saved ${rule.camera_id} / ${rule.rule_id}`, "info");
  } catch (err) {
    toastError(err);
  }
}
