// The live connection: the WebSocket on which the server pushes the queue, the in-hand
// list and the cameras whenever something changes.
//
// It reconnects by itself with a growing, jittered delay (0.5 s, 1 s, 2 s... up to 30 s:
// after a server restart, a room of consoles must not reconnect in the same instant).
// Close code 4401 means the session is no longer valid: no retry, back to login. 4403 means
// this account may not have the feed (a police account): no retry either.

import { cancel, later } from "./session.js";

const MAX_DELAY_MS = 30000;

function socketUrl() {
  const url = new URL("ws", document.baseURI);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

function retryDelay(attempt) {
  const base = Math.min(MAX_DELAY_MS, 500 * 2 ** attempt);
  return Math.round(base * (0.8 + 0.4 * Math.random()));
}

/**
 * Connect and keep connected. Callbacks: onMessage(object), onState(state, retryAt) with
 * state "connecting" | "live" | "offline" (retryAt: Date.now() ms of the next try), onUnauthorized(),
 * onForbidden() (4403: it stops trying).
 * Returns {close(), retryNow()}. Its timers are session timers: logout stops them.
 */
export function connectLive({ onMessage, onState, onUnauthorized, onForbidden = () => {} }) {
  let socket = null;
  let attempt = 0;
  let retryTimer = null;
  let stopped = false;

  const open = () => {
    retryTimer = null;
    onState("connecting", null);
    socket = new WebSocket(socketUrl());
    socket.addEventListener("open", () => {
      attempt = 0;
      onState("live", null);
    });
    socket.addEventListener("message", (event) => receive(event.data, onMessage));
    socket.addEventListener("close", (event) => closed(event.code));
    // An error is always followed by a close, which schedules the retry.
  };

  const closed = (code) => {
    socket = null;
    if (stopped) return;
    if (code === 4401) {
      onUnauthorized();
      return;
    }
    if (code === 4403) {
      stopped = true;
      onForbidden();
      return;
    }
    const delay = retryDelay(attempt);
    attempt += 1;
    onState("offline", Date.now() + delay);
    retryTimer = later(delay, open);
  };

  open();
  return {
    close() {
      stopped = true;
      if (retryTimer !== null) cancel(retryTimer);
      if (socket) socket.close(1000, "logout");
    },
    retryNow() {
      if (stopped || socket || retryTimer === null) return;
      cancel(retryTimer);
      open();
    },
  };
}

// A message that is not JSON is ignored: one bad frame must not stop the console.
function receive(data, onMessage) {
  let message;
  try {
    message = JSON.parse(data);
  } catch {
    return;
  }
  if (message && typeof message === "object") onMessage(message);
}
