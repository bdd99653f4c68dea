// The critical-alert cue: a flashing banner and a beep.
//
// The beep sounds once per critical alert id, when it first appears in the queue in
// this session (a push that merely re-sends it stays silent). The banner lists the
// critical alerts nobody has opened yet (status "new"); opening one marks it seen,
// which takes it off the banner. "Hide" silences the banner for the alerts shown.

import { select, store, subscribe } from "./alerts.js";
import { title } from "./describe.js";
import { h, setChildren } from "./dom.js";
import { beep } from "./sound.js";

const announced = new Set(); // critical ids already beeped for (or first seen in hand)
const dismissed = new Set();
let banner = null;
let onOpen = () => {};

/** Wire the banner element for a new session; `open(id)` opens an alert's page. */
export function mountCritical(bannerEl, open) {
  banner = bannerEl;
  onOpen = open;
  announced.clear();
  dismissed.clear();
  subscribe(update);
  update();
}

function update() {
  const fresh = store.queue.filter((a) => a.critical && !announced.has(a.id));
  fresh.forEach((a) => announced.add(a.id));
  // One that shows up already acknowledged is being handled by someone: no sound for it later.
  store.inHand.forEach((a) => announced.add(a.id));
  if (fresh.length) beep();
  renderBanner();
}

function pending() {
  return store.queue.filter((a) => a.critical && a.status === "new" && !dismissed.has(a.id));
}

function renderBanner() {
  if (!banner) return;
  const alerts = pending();
  banner.hidden = alerts.length === 0;
  if (!alerts.length) {
    banner.replaceChildren();
    return;
  }
  const shown = alerts.slice(0, 3);
  setChildren(banner,
    h("strong", { class: "banner-label" }, alerts.length > 1 ? `${alerts.length} CRITICAL ALERTS` : "CRITICAL ALERT"),
    shown.map((a) => h("button", {
      type: "button", class: "banner-alert", "data-alert-id": a.id,
      onclick: () => {
        select(a.id);
        onOpen(a.id);
      },
    }, title(a))),
    alerts.length > shown.length ? h("span", {}, `+${alerts.length - shown.length} more`) : null,
    h("button", { type: "button", class: "banner-hide", onclick: hide }, "Hide"));
}

function hide() {
  pending().forEach((a) => dismissed.add(a.id));
  renderBanner();
}
