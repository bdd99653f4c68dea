// The operator console's entry point: login, the session's life (start, live feed,
// logout), the header and the switch between views.
//
// A police account (an outside station) gets the relay view alone: its granted cameras, no
// queue, no live feed socket (the server refuses it), no other tab.
//
// Modules: api (calls), session (user, role, timers), alerts (lists + selection),
// queue / critical (side panel, banner), wall, alert-page, dialogs, audit, admin (+ grants),
// recordings / requisitions (+ timeline, player), relay (police), keys + shortcuts (keyboard),
// live (WebSocket), sound, toast, modal, dom (helpers).

import { acknowledge, closeAlert, escalate } from "./actions.js";
import { alertPageId, mountAlertPage, openAlertPage } from "./alert-page.js";
import { moveSelection, resetStore, selectedAlert, setLists } from "./alerts.js";
import { mountAdmin, showAdmin } from "./admin.js";
import { api, ApiError, onUnauthorized, post } from "./api.js";
import { mountAudit, showAudit } from "./audit.js";
import { mountCritical } from "./critical.js";
import { openHelp, preloadAuthorities } from "./dialogs.js";
import { duration, localClock } from "./dom.js";
import { installKeys } from "./keys.js";
import { connectLive } from "./live.js";
import { closeAllModals } from "./modal.js";
import { mountQueue } from "./queue.js";
import { hideRecordings, mountRecordings, showRecordings } from "./recordings.js";
import { mountRelay } from "./relay.js";
import { mountRequisitions, showRequisitions } from "./requisitions.js";
import { endSession, every, hasRole, onEnd, session } from "./session.js";
import { installAudioUnlock, isMuted, onMuteChange, toggleMute } from "./sound.js";
import { toast, toastError } from "./toast.js";
import { mountWall, setCameras, setWallVisible } from "./wall.js";

const $ = (selector) => document.querySelector(selector);
const POLL_MS = 5000; // REST polling while the WebSocket is down, so the queue never freezes silently
const VIEWS = { wall: "operator", recordings: "supervisor", requisitions: "supervisor", audit: "supervisor",
  admin: "admin" };
// The containers emptied at the end of a session (nothing of one user's data stays for the next).
const CONTAINERS = ["#wall-grid", "#recordings-view", "#requisitions-view", "#audit-view", "#admin-view", "#relay-view",
  "[data-testid=queue]", "[data-testid=in-hand]", "#queue-actions", "#critical-banner"];

const live = { handle: null, state: "offline", retryAt: null, pushes: 0 };

// ---- start-up and login ---------------------------------------------------------------

async function boot() {
  installAudioUnlock();
  installKeys(keyHandlers());
  onUnauthorized(sessionLost);
  wireChrome();
  try {
    await startSession(await api("api/me"));
  } catch (err) {
    showLogin(err instanceof ApiError && err.status === 401 ? "" : err.message);
  }
}

function wireChrome() {
  $("#login .login-form").addEventListener("submit", submitLogin);
  $("#logout").addEventListener("click", logout);
  $("#help-button").addEventListener("click", openHelp);
  $("#mute").addEventListener("click", toggleMute);
  $("#ws-state").addEventListener("click", () => live.handle && live.handle.retryNow());
  document.querySelectorAll(".tabs [data-view]").forEach((tab) =>
    tab.addEventListener("click", () => { location.hash = tab.dataset.view; }));
  window.addEventListener("hashchange", route);
  // A button clicked with the mouse lets go of the focus: otherwise the next Enter would press it
  // again instead of opening the selected alert. (detail is 0 for a keyboard-pressed button.)
  document.addEventListener("click", (event) => {
    const button = event.detail > 0 && event.target instanceof Element ? event.target.closest("button") : null;
    if (button) button.blur();
  });
  onMuteChange(renderMute);
  renderMute();
}

async function submitLogin(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector("[data-testid=login-submit]");
  button.disabled = true;
  $("#login-error").textContent = "";
  try {
    const me = await post("api/login", { username: form.username.value.trim(), password: form.password.value });
    form.password.value = "";
    await startSession(me);
  } catch (err) {
    $("#login-error").textContent = err.message || "Login failed";
    toastError(err);
  } finally {
    button.disabled = false;
  }
}

// ---- the session ------------------------------------------------------------------------

async function startSession(me) {
  session.user = me && me.username ? me.username : "?";
  session.role = me && me.role ? me.role : "operator";
  if (session.role === "police") {
    startRelaySession();
    return;
  }
  session.settings = { ...session.settings, ...(await loadSettings()) };
  if (session.user === null) return; // the settings call found the session gone (401): login is shown
  showShell();
  mountPanels();
  every(1000, renderClock);
  renderClock();
  startLive();
  every(POLL_MS, () => live.state !== "live" && poll());
  route();
  preloadAuthorities();
  await poll();
}

// The header and the layout for the session's role: a police account has no tabs, queue, live state or sound.
function showShell() {
  const police = session.role === "police";
  $("#user-name").textContent = session.user;
  $("#user-role").textContent = session.role;
  document.querySelectorAll(".tabs [data-view]").forEach((tab) => {
    tab.hidden = police || !hasRole(VIEWS[tab.dataset.view]);
  });
  ["#queue-panel", "#ws-state", "#mute", "#help-button"].forEach((sel) => { $(sel).hidden = police; });
  $(".brand").textContent = police ? "Camera relay" : "Alerts console";
  $("#toasts").replaceChildren(); // a failed attempt's message no longer applies
  $("#login").hidden = true;
  $("#shell").hidden = false;
}

// A police account: the relay view and the clock, nothing else (no settings, queue, socket or polling: the
// server refuses them to this role).
function startRelaySession() {
  showShell();
  mountRelay($("#relay-view"));
  every(1000, renderClock);
  renderClock();
  route();
}

async function loadSettings() {
  try {
    return (await api("api/settings")) || {};
  } catch (err) {
    toastError(err); // the defaults still run the console
    return {};
  }
}

function mountPanels() {
  mountQueue($("#queue-panel"), openAlertPage);
  mountCritical($("#critical-banner"), openAlertPage);
  mountAlertPage();
  mountWall($("#wall-grid"));
  if (hasRole("supervisor")) {
    mountRecordings($("#recordings-view"));
    mountRequisitions($("#requisitions-view"));
    mountAudit($("#audit-view"));
  }
  if (hasRole("admin")) mountAdmin($("#admin-view"));
}

async function logout() {
  try {
    await post("api/logout");
  } catch {
    /* the session ends here whatever the server says */
  }
  showLogin("");
}

// A 401 from any call, or the socket closing with 4401.
function sessionLost() {
  if (session.user !== null) toast("Your session has ended: please log in again");
  showLogin("");
}

/** End the session (timers, socket, overlays, data on screen) and show the login form. */
function showLogin(message) {
  teardown();
  $("#shell").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
  $("#login [data-testid=login-username]").focus();
}

function teardown() {
  closeAllModals();
  endSession(); // stops every timer and closes the socket (onEnd)
  resetStore();
  live.handle = null;
  live.state = "offline";
  CONTAINERS.forEach((sel) => $(sel).replaceChildren());
  $("#critical-banner").hidden = true;
  document.title = "Alerts console";
}

// ---- live feed ----------------------------------------------------------------------------

function startLive() {
  live.pushes = 0;
  live.handle = connectLive({
    onMessage: receive,
    onState: (state, retryAt) => {
      live.state = state;
      live.retryAt = retryAt;
      renderLiveState();
    },
    onUnauthorized: sessionLost,
    onForbidden: liveRefused,
  });
  onEnd(() => live.handle && live.handle.close());
}

// The server refuses the feed to this account (4403): its role changed (to police) during the session. No retry:
// start again as what the account now is.
async function liveRefused() {
  live.state = "refused";
  renderLiveState();
  try {
    const me = await api("api/me");
    if (me && me.role !== session.role) {
      toast(`Your role is now ${me.role}: the console changes accordingly`, "info");
      teardown();
      await startSession(me);
    }
  } catch (err) {
    toastError(err);
  }
}

function receive(message) {
  if (message.type !== "queue") return; // other kinds may come later: ignore what we do not know
  live.pushes += 1;
  setLists(message.queue, message.in_hand,
    { now: message.now, queueTotal: message.queue_total, inHandTotal: message.in_hand_total });
  if (Array.isArray(message.cameras)) setCameras(message.cameras);
}

// The same lists over REST (at start and while the socket is down). A push that arrives
// while the poll is in flight is newer: the poll's answer is then dropped.
async function poll() {
  const pushesBefore = live.pushes;
  try {
    const [queue, inHand, cameras] = await Promise.all([
      api("api/alerts", { query: { status: "queue" } }),
      api("api/alerts", { query: { status: "in_hand" } }),
      api("api/cameras"),
    ]);
    if (live.pushes !== pushesBefore || session.user === null) return;
    setLists(queue, inHand);
    setCameras(cameras);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401) && live.state === "live") toastError(err);
  }
}

function renderLiveState() {
  const el = $("#ws-state");
  el.className = `ws-state ws-${live.state}`;
  el.title = "Live connection to the server";
  if (live.state === "live") el.textContent = "live";
  else if (live.state === "connecting") el.textContent = "connecting…";
  else if (live.state === "refused") {
    el.textContent = "no live feed";
    el.title = "The server refuses the live feed to this account";
  } else {
    const wait = live.retryAt ? Math.max(0, (live.retryAt - Date.now()) / 1000) : 0;
    el.textContent = `offline · retry in ${duration(Math.ceil(wait))}`;
    el.title = "Connection lost; the queue is refreshed every 5 s meanwhile. Click to retry now.";
  }
}

function renderClock() {
  $("#clock").textContent = localClock(Date.now() / 1000);
  if (live.state === "offline" && live.handle) renderLiveState(); // the retry countdown
}

function renderMute() {
  const muted = isMuted();
  const button = $("#mute");
  button.replaceChildren(muted ? "Muted " : "Sound on ", Object.assign(document.createElement("kbd"), { textContent: "m" }));
  button.setAttribute("aria-pressed", String(muted));
  button.classList.toggle("muted-on", muted);
}

// ---- views ----------------------------------------------------------------------------------

function route() {
  if (session.user === null) return;
  let view = location.hash.replace(/^#/, "") || "wall";
  if (!VIEWS[view] || !hasRole(VIEWS[view])) view = "wall";
  if (session.role === "police") view = "relay";
  document.querySelectorAll(".views > .view").forEach((el) => { el.hidden = el.dataset.view !== view; });
  document.querySelectorAll(".tabs [data-view]").forEach((tab) =>
    tab.setAttribute("aria-selected", String(tab.dataset.view === view)));
  setWallVisible(view === "wall");
  if (view === "recordings") showRecordings();
  else hideRecordings();
  if (view === "requisitions") showRequisitions();
  if (view === "audit") showAudit();
  if (view === "admin") showAdmin();
}

// ---- keyboard -------------------------------------------------------------------------------

function keyHandlers() {
  return {
    enabled: () => session.user !== null && session.role !== "police", // a police account has no queue
    next: () => moveSelection(1),
    previous: () => moveSelection(-1),
    open: () => {
      const alert = selectedAlert();
      if (alert && alertPageId() !== alert.id) openAlertPage(alert.id);
    },
    acknowledge: () => acknowledge(selectedAlert()),
    escalate: () => escalate(selectedAlert()),
    close: (verdict) => closeAlert(selectedAlert(), verdict),
    mute: toggleMute,
    help: openHelp,
  };
}

boot();
