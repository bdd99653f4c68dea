"""The fast replay gives exactly the events of stepping every rule on every frame.

:meth:`RuleEngine.replay` lets rules take the whole log at once (:class:`~analytics.rules.base.Replays`),
sleep through the frames that cannot change them (:class:`~analytics.rules.base.Sleeps`) or see only the
tracks that can make their events (:class:`~analytics.rules.base.Selects`). These tests hold all of it to
the reference, every rule stepped on every frame (``every_frame=True``), itself checked against the
live engine stepped frame by frame: on random logs (hypothesis: track births and deaths, tentative and lost
rows, people standing and walking, cars in both directions, repeated timestamps, long gaps between frames)
with every rule and thresholds drawn from their ranges, and on PETS09's real trajectories. The integration
tests hold the fast replay of real runs to their live events, and ``benchmarks/replay_speed.py`` checks it
against the reference on every log it times.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.config import CameraConfig, parse_config
from analytics.rules.base import Replays, Sleeps
from analytics.rules.engine import RuleEngine
from analytics.rules.view import LogFrames
from analytics.types import CLASS_IDS, Tracks, TrackState

W, H = 640, 480
PERSON, CAR = CLASS_IDS["person"], CLASS_IDS["car"]

SCENE = {
    "calibration": {"image_points": [[0.0, 0.4], [1.0, 0.4], [1.0, 1.0], [0.0, 1.0]],
                    "ground_points": [[0.0, 30.0], [40.0, 30.0], [40.0, 0.0], [0.0, 0.0]]},
    "zones": [{"id": "square", "polygon": [[0.2, 0.45], [0.8, 0.45], [0.8, 0.95], [0.2, 0.95]]},
              {"id": "lane", "polygon": [[0.0, 0.45], [0.5, 0.45], [0.5, 1.0], [0.0, 1.0]],
               "allowed_direction": [0.0, -1.0]}],
    "lines": [{"id": "gate", "a": [0.1, 0.7], "b": [0.9, 0.7]}],
}


def camera(p: dict) -> CameraConfig:
    """One camera with every rule, thresholds from ``p``."""
    rules = [
        {"kind": "loitering", "id": "loiter", "zone": "square", "min_duration": p["min_duration"],
         "grace": p["grace"], "end_grace": p["end_grace"], "max_speed_mps": p["max_speed"]},
        {"kind": "intrusion", "id": "intrude", "zone": "square", "classes": ["car"], "min_duration": p["min_duration"],
         "grace": p["grace"], "end_grace": p["end_grace"]},
        {"kind": "occupancy", "id": "crowd", "zone": "square", "max_count": p["max_count"],
         "min_duration": p["min_duration"], "grace": p["grace"], "end_grace": p["end_grace"]},
        {"kind": "occupancy", "id": "dense", "zone": "square", "per_m2": True, "max_density": 0.004,
         "min_duration": p["min_duration"]},
        {"kind": "line_count", "id": "count", "line": "gate", "classes": ["person", "car"],
         "hysteresis_px": p["band"], "forget_after": p["forget_after"]},
        {"kind": "gathering", "id": "group", "min_people": 2, "radius_m": 3.0, "min_duration": p["min_duration"],
         "max_speed_mps": 2.0, "grace": p["grace"], "end_grace": max(p["end_grace"], 0.1)},
        {"kind": "congestion", "id": "queue", "zone": "lane", "min_vehicles": 2, "max_speed_mps": 3.0,
         "min_duration": p["min_duration"], "start_grace": p["grace"], "end_grace": p["end_grace"]},
        {"kind": "wrong_way", "id": "wrong", "zone": "lane", "min_displacement_m": 1.0, "min_duration": 0.3,
         "end_grace": p["end_grace"], "forget_after": max(p["forget_after"], p["end_grace"])},
        {"kind": "speeding", "id": "fast", "max_speed_mps": 1.0, "tolerance_mps": 0.0, "min_duration": 0.2,
         "grace": p["grace"], "end_grace": p["end_grace"]},
        {"kind": "abnormal_flow", "id": "flow", "line": "gate", "classes": ["person", "car"], "window": 10.0,
         "hop": 1.0, "bucket": "none", "max_count": p["max_count"] - 1, "hysteresis_px": p["band"],
         "forget_after": p["forget_after"], "max_gap": 3.0},
        {"kind": "abnormal_flow", "id": "entries", "zone": "square", "classes": ["person", "car"], "window": 10.0,
         "hop": 2.0, "bucket": "none", "max_count": 3, "min_count": 1, "forget_after": p["forget_after"],
         "max_gap": 5.0},
    ]
    cfg = parse_config({"cameras": [{"id": "cam", "source": "x.mp4", "scene": SCENE, "rules": rules}]},
                       path=Path("random.yaml"))
    return cfg.cameras[0]


def random_log(seed: int, frames: int, tracks: int, geometry, *, resized: bool = False) -> LogFrames:
    """A random log: tracks born and ending at random frames, standing, wandering or walking straight (up or
    down across the line), missed at some frames, tentative at first, sometimes lost; frame times with
    repeats and long gaps. ``resized``: the frames after the middle are decoded larger (a camera whose
    resolution changed), the same pixels."""
    rng = np.random.default_rng(seed)
    steps = rng.choice([0.0, 0.1, 0.2, 0.2, 0.2, 0.5, 1.0, 2.5, 6.0], size=frames)
    time = np.cumsum(steps) + 1000.0
    per_frame: list[list[tuple]] = [[] for _ in range(frames)]
    for k in range(tracks):
        tid = int(rng.integers(1, 60)) * 100 + k  # unique, unsorted
        first = int(rng.integers(0, frames))
        last = min(frames, first + int(rng.integers(1, frames + 1)))
        cls = PERSON if rng.random() < 0.6 else CAR
        mode = rng.choice(["stand", "wander", "walk"])
        if mode == "stand":  # near one of two spots, so that people group
            x, y = rng.choice([200.0, 400.0]) + rng.normal(0, 20), 380.0 + rng.normal(0, 20)
        else:
            x, y = rng.uniform(50, 590), rng.uniform(200, 470)
        vx, vy = (0.0, rng.choice([-1.0, 1.0]) * rng.uniform(5, 40)) if mode == "walk" else (0.0, 0.0)
        for f in range(first, last):
            if mode == "wander":
                vx, vy = rng.normal(0, 6, size=2)
            elif mode == "stand":
                vx, vy = rng.normal(0, 0.5, size=2)
            x, y = float(np.clip(x + vx, 1, W - 1)), float(np.clip(y + vy, 130, H - 1))
            if rng.random() < 0.12:
                continue  # missed
            state = TrackState.TENTATIVE if f - first < 2 else (TrackState.LOST if rng.random() < 0.1
                                                                   else TrackState.CONFIRMED)
            h = 60.0 if cls == PERSON else 40.0
            per_frame[f].append((tid, [x - 10, y - h, x + 10, y], cls, float(rng.uniform(0.3, 1.0)),
                                 [vx * 5, vy * 5], f - first + 1, int(state)))
    for rows in per_frame:
        rng.shuffle(rows)
    rows = [r for fr in per_frame for r in fr]
    counts = np.array([len(fr) for fr in per_frame])
    ends = np.cumsum(counts)
    tracks = Tracks([r[0] for r in rows], np.array([r[1] for r in rows], np.float32).reshape(-1, 4),
                    [r[2] for r in rows], [r[3] for r in rows], np.array([r[4] for r in rows]).reshape(-1, 2),
                    [r[5] for r in rows], [r[6] for r in rows])
    sizes = np.tile([W, H], (frames, 1))
    if resized:
        sizes[frames // 2:] = [W + 160, H + 120]
    return LogFrames(tracks, np.arange(frames) * 2, time, sizes, ends - counts, ends, geometry)


def live(cam: CameraConfig, log: LogFrames) -> list:
    """The live engine stepped on each frame, then closed."""
    engine = RuleEngine(cam.id, cam.scene, cam.rules)
    events = []
    for f in range(len(log)):
        a, b = int(log.starts[f]), int(log.ends[f])
        events += engine.step(log.tracks[a:b], seq=int(log.seq[f]), timestamp=float(log.time[f]),
                              frame_size=log.size_of[f])
    return events + engine.close()


params = st.fixed_dictionaries({
    "min_duration": st.sampled_from([0.05, 0.4, 1.0, 3.0]),
    "grace": st.sampled_from([0.0, 0.3, 1.0, 3.0]),
    "end_grace": st.sampled_from([0.0, 0.3, 1.0, 4.0]),
    "max_speed": st.sampled_from([None, 1.5]),
    "max_count": st.sampled_from([1, 3]),
    "band": st.sampled_from([0.0, 4.0]),
    "forget_after": st.sampled_from([0.5, 2.0, 10.0]),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), frames=st.integers(1, 90), tracks=st.integers(1, 14), p=params,
       resized=st.booleans())
def test_fast_replay_gives_exactly_the_events_of_every_frame(seed: int, frames: int, tracks: int, p: dict,
                                                             resized: bool) -> None:
    cam = camera(p)
    log = random_log(seed, frames, tracks, cam.scene, resized=resized)
    reference = RuleEngine(cam.id, cam.scene, cam.rules).replay(log, every_frame=True)
    assert reference == live(cam, log)
    fast = RuleEngine(cam.id, cam.scene, cam.rules).replay(log)
    assert fast == reference


def test_random_logs_give_every_kind_of_record() -> None:
    """The random logs above are not vacuous: together they open, update and close events of every rule
    that can take the whole log or sleep."""
    seen: set[tuple[str, str]] = set()
    p = {"min_duration": 0.4, "grace": 0.3, "end_grace": 1.0, "max_speed": None, "max_count": 1, "band": 0.0,
         "forget_after": 2.0}
    cam = camera(p)
    for seed in range(12):
        log = random_log(seed, 150, 12, cam.scene)
        events = RuleEngine(cam.id, cam.scene, cam.rules).replay(log)
        seen |= {(e.rule_id, e.status) for e in events}
        for rule in RuleEngine(cam.id, cam.scene, cam.rules).rules:  # the fast ways are taken
            assert not isinstance(rule, Replays) or rule.replay(log, cam.id) is not None, rule.id
    fast = [r.id for r in RuleEngine(cam.id, cam.scene, cam.rules).rules if isinstance(r, (Replays, Sleeps))]
    assert {"loiter", "intrude", "crowd", "count", "group", "queue", "wrong", "fast", "flow", "entries"} <= set(fast)
    for rule in ("loiter", "intrude", "crowd", "group", "fast", "flow", "entries"):
        assert {(rule, "open"), (rule, "updated"), (rule, "closed")} <= seen, rule
    assert ("count", "closed") in seen and ("wrong", "open") in seen and ("queue", "open") in seen


def test_a_track_twice_in_a_frame_falls_back_to_stepping_every_frame() -> None:
    cam = camera({"min_duration": 0.05, "grace": 1.0, "end_grace": 1.0, "max_speed": None, "max_count": 1,
                  "band": 0.0, "forget_after": 2.0})
    log = random_log(3, 60, 8, cam.scene)
    # every row twice in its frame: what a tracker giving one id to two objects would log
    index = [r for f in range(len(log)) for _ in range(2) for r in range(log.starts[f], log.ends[f])]
    log = LogFrames(log.tracks[np.array(index, dtype=np.int64)], log.seq, log.time, np.tile([W, H], (len(log), 1)),
                    2 * log.starts, 2 * log.ends, cam.scene)
    engine = RuleEngine(cam.id, cam.scene, cam.rules)
    per_track = [r for r in engine.rules if r.id in ("loiter", "intrude", "count")]  # occupancy counts rows
    assert all(r.replay(log, cam.id) is None for r in per_track)
    events = live(cam, log)
    assert events and engine.replay(log) == events


def test_fast_replay_of_the_pets09_ground_truth(tmp_path: Path) -> None:
    """Real trajectories (PETS09-S2L1's ground truth from ../shared) through the rules of configs/pets09.yaml,
    as they are and eight times as dense (time-shifted copies overlaid, new ids)."""
    import polars as pl

    from analytics.config import load_config
    from analytics.evaluation import mot_to_track_log, read_mot
    from analytics.paths import shared_dir
    from analytics.replay import load_log

    root = Path(__file__).resolve().parents[2]
    cam = load_config(root / "configs" / "pets09.yaml").cameras[0]
    gt = mot_to_track_log(read_mot(shared_dir() / "footage" / "mot" / "PETS09-S2L1" / "gt" / "gt.txt"),
                          camera_id=cam.id, fps=7.0)
    n = int(gt["seq"].max()) + 1
    crowd = pl.concat([gt.with_columns(((pl.col("seq") + k * n // 8) % n).alias("seq"),  # wrapped: a new track
                                       pl.col("track_id") + k * 10_000 + (pl.col("seq") + k * n // 8 >= n) * 5_000)
                       for k in range(8)])
    crowd = crowd.with_columns((pl.col("seq") / 7.0).alias("timestamp")).sort("seq", maintain_order=True)
    for name, table in (("gt", gt), ("crowd", crowd)):
        path = tmp_path / f"{name}.tracks.parquet"
        table.write_parquet(path)
        log = load_log(path, cam.scene, frame_size=(768, 576))
        reference = RuleEngine(cam.id, cam.scene, cam.rules).replay(log, every_frame=True)
        assert len(reference) > 30 and RuleEngine(cam.id, cam.scene, cam.rules).replay(log) == reference, name


def test_a_replay_is_a_whole_stream_on_a_fresh_engine() -> None:
    cam = camera({"min_duration": 0.4, "grace": 0.3, "end_grace": 1.0, "max_speed": None, "max_count": 1,
                  "band": 0.0, "forget_after": 2.0})
    log = random_log(5, 120, 10, cam.scene)
    engine = RuleEngine(cam.id, cam.scene, cam.rules)
    first = engine.replay(log)
    assert first and engine.replay(log) == first  # fresh again after a replay
    engine.step(log.tracks[0:0], seq=0, timestamp=0.0, frame_size=(W, H))
    with pytest.raises(ValueError, match="replay needs a fresh engine"):
        engine.replay(log)
