// The logged-in session: who, their role, the console settings, and every timer and
// listener started for them. Timers go through every()/later() so that logout (or a
// 401) stops them all in one place: nothing keeps polling frames for a closed session.

// "police" is an outside account that sees only its relay grants (app.js gives it the relay view alone).
const ROLES = ["police", "operator", "supervisor", "admin"];

export const session = {
  user: null,
  role: null,
  settings: { critical_priority: 0.7, timezone: "UTC", shifts: [], live_fps: 2 },
  authorities: null, // loaded on first escalation
};

const intervals = new Set();
const timeouts = new Set();
const cleanups = [];

/** True when the session's role is at least `minRole` (police < operator < supervisor < admin). */
export function hasRole(minRole) {
  return ROLES.indexOf(session.role) >= ROLES.indexOf(minRole) && session.role !== null;
}

/** setInterval, stopped at the end of the session. Returns the id (for cancel). */
export function every(ms, fn) {
  const id = setInterval(fn, ms);
  intervals.add(id);
  return id;
}

/** setTimeout, cancelled at the end of the session. */
export function later(ms, fn) {
  const id = setTimeout(() => {
    timeouts.delete(id);
    fn();
  }, ms);
  timeouts.add(id);
  return id;
}

/** Stop a timer from every() or later(). */
export function cancel(id) {
  if (intervals.delete(id)) clearInterval(id);
  if (timeouts.delete(id)) clearTimeout(id);
}

/** Run fn when the session ends (close the socket, drop cached data...). */
export function onEnd(fn) {
  cleanups.push(fn);
}

/** Stop every timer, run the clean-ups, forget the user. */
export function endSession() {
  intervals.forEach(clearInterval);
  timeouts.forEach(clearTimeout);
  intervals.clear();
  timeouts.clear();
  for (const fn of cleanups.splice(0)) {
    try {
      fn();
    } catch (err) {
      console.warn("session clean-up failed", err);
    }
  }
  session.user = null;
  session.role = null;
  session.authorities = null;
}
