// A player of recorded segments: one <video>, previous / next segment buttons, and the wall
// time being shown. At the end of a segment it goes on with the next one of the same camera.
// Shared by the Recordings view and the police relay's playback.

import { h, localClock, localTime, safeUrl, setChildren } from "./dom.js";
import { onEnd } from "./session.js";
import { toast } from "./toast.js";

/**
 * Build a player. onPosition(segment, t) is called as it plays (t: the wall time shown, Unix seconds), and with
 * (null, null) when it stops. Returns {el, play(list, index, offset), pause(), stop()}; `list` is one camera's
 * segments sorted by wall_start.
 */
export function createPlayer({ onPosition = () => {} } = {}) {
  const video = h("video", { class: "recording-video", "data-testid": "recording-video", controls: true,
    playsinline: true, preload: "auto" });
  video.muted = true; // recorded surveillance video has no sound worth hearing; muted, playing starts without a click
  const info = h("span", { class: "player-info", "data-testid": "player-info" }, "Choose a moment on a timeline.");
  const previous = h("button", { type: "button", "data-testid": "segment-previous", disabled: true },
    "◀ Previous segment");
  const next = h("button", { type: "button", "data-testid": "segment-next", disabled: true }, "Next segment ▶");
  const state = { list: [], index: -1, seekTo: 0 };

  const current = () => state.list[state.index] || null;
  const describe = () => {
    const s = current();
    if (!s) return;
    const t = s.wall_start + (state.seekTo || video.currentTime || 0); // seekTo: until the new file is loaded
    setChildren(info, h("strong", {}, String(s.camera_id)), ` ${localTime(t)}`,
      h("span", { class: "muted" }, ` · segment ${state.index + 1} of ${state.list.length}, `
        + `${localClock(s.wall_start)} → ${localClock(s.wall_end)}`),
      s.held ? h("span", { class: "badge badge-hold" }, "held") : null);
    onPosition(s, t);
  };

  const play = (list, index, offset = 0) => {
    const s = list[index];
    const url = s ? safeUrl(s.url) : null;
    if (!url) {
      toast("This segment has no playable address");
      return;
    }
    state.list = list;
    state.index = index;
    previous.disabled = index <= 0;
    next.disabled = index >= list.length - 1;
    if (video.src === url && video.readyState >= 1) {
      video.currentTime = offset;
    } else {
      state.seekTo = offset;
      video.src = url;
    }
    video.play().catch(() => { /* refused autoplay or a new src replaced it: the controls still work */ });
    describe();
  };

  video.addEventListener("loadedmetadata", () => {
    if (state.seekTo > 0 && state.seekTo < (video.duration || Infinity)) video.currentTime = state.seekTo;
    state.seekTo = 0;
  });
  video.addEventListener("timeupdate", describe);
  video.addEventListener("ended", () => {
    if (state.index < state.list.length - 1) play(state.list, state.index + 1, 0);
    else setChildren(info, "End of the recordings in this range.");
  });
  video.addEventListener("error", () => {
    const s = current();
    if (s && video.getAttribute("src")) {
      toast(`Segment ${s.id} of ${s.camera_id} could not be played (missing, or access refused)`);
    }
  });
  previous.addEventListener("click", () => state.index > 0 && play(state.list, state.index - 1, 0));
  next.addEventListener("click", () => state.index < state.list.length - 1 && play(state.list, state.index + 1, 0));

  const stop = () => {
    video.pause();
    video.removeAttribute("src");
    video.load(); // drops the connection to the file
    state.list = [];
    state.index = -1;
    previous.disabled = true;
    next.disabled = true;
    setChildren(info, "Choose a moment on a timeline.");
    onPosition(null, null);
  };
  onEnd(stop); // a detached <video> would go on playing after logout

  const el = h("div", { class: "player" }, video, h("div", { class: "player-bar" }, previous, next, info));
  return { el, play, pause: () => video.pause(), stop };
}
