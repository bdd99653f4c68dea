// The critical-alert sound cue: a short two-tone beep from a WebAudio oscillator (no audio file).
//
// Browsers refuse to start audio before the user interacts with the page, so the
// AudioContext is created on the first click or key press (unlockAudio). A beep asked
// for before that is silently skipped; the flashing banner still shows.

const MUTE_KEY = "console.muted";

let context = null;
let muted = readStored(MUTE_KEY) === "1";
const listeners = new Set();

// Storage can be unavailable (privacy settings); the mute state then lasts for the page only.
function readStored(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function writeStored(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    /* not remembered: harmless */
  }
}

/** Create/resume the AudioContext on the first user gesture. Install once at start-up. */
export function installAudioUnlock() {
  const unlock = () => {
    try {
      context = context || new AudioContext();
      if (context.state === "suspended") context.resume();
    } catch {
      context = null; // no WebAudio: the visual cue is enough
    }
  };
  window.addEventListener("pointerdown", unlock, { capture: true });
  window.addEventListener("keydown", unlock, { capture: true });
}

export function isMuted() {
  return muted;
}

/** Mute or unmute (remembered in this browser). */
export function setMuted(value) {
  muted = Boolean(value);
  writeStored(MUTE_KEY, muted ? "1" : "0");
  listeners.forEach((fn) => fn(muted));
}

export function toggleMute() {
  setMuted(!muted);
}

/** Call fn(muted) whenever the mute state changes. */
export function onMuteChange(fn) {
  listeners.add(fn);
}

/** Two short tones (880 Hz then 660 Hz), unless muted or audio is still locked. */
export function beep() {
  if (muted || !context || context.state !== "running") return;
  const t0 = context.currentTime;
  tone(880, t0, 0.18);
  tone(660, t0 + 0.22, 0.18);
}

function tone(frequency, start, length) {
  const osc = context.createOscillator();
  const gain = context.createGain();
  osc.type = "square";
  osc.frequency.value = frequency;
  // A quick fade in and out avoids the click of a hard start/stop.
  gain.gain.setValueAtTime(0.0001, start);
  gain.gain.exponentialRampToValueAtTime(0.25, start + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, start + length);
  osc.connect(gain).connect(context.destination);
  osc.start(start);
  osc.stop(start + length + 0.02);
}
