"""Rule plumbing: lasting-event life cycle, the engine, the event log, the frame index and the replay."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from analytics.config import ConfigError, parse_config
from analytics.eventlog import EventLogWriter, event_json, read_events
from analytics.geometry import SceneGeometry
from analytics.replay import ReplayError, load_frames, replay
from analytics.rules.base import Event, RuleContext
from analytics.rules.engine import RuleEngine
from analytics.rules.lasting import Candidate, Lifecycle, LifecycleState, update_timers
from analytics.tracklog import FRAME_SCHEMA, ParquetTrackWriter, frames_path_for
from analytics.types import CLASS_IDS, Frame, TrackedFrame, Tracks, TrackState

W, H = 640, 480
CAR = CLASS_IDS["car"]
CTX = RuleContext("cam", (W, H), 0, SceneGeometry())


def ctx(seq: int) -> RuleContext:
    return RuleContext("cam", (W, H), seq, SceneGeometry())


# -- timers and life cycle ------------------------------------------------------------------------------


def test_timers_keep_their_start_across_short_gaps_and_reset_after_long_ones() -> None:
    t = update_timers({}, [1, 2], 0.0, grace=1.0)
    t = update_timers(t, [1], 0.5, grace=1.0)  # 2 missing for 0.5 s: kept
    assert t == {1: (0.0, 0.5), 2: (0.0, 0.0)}
    t = update_timers(t, [1, 2], 0.9, grace=1.0)
    assert t[2] == (0.0, 0.9)
    t = update_timers(t, [1], 2.0, grace=1.0)  # 2 seen missing 1.1 s after it last held: dropped
    assert 2 not in t
    assert t[1] == (0.0, 2.0)  # 1 held on both sides of a 1.1 s gap between frames: not reset
    t = update_timers(t, [1, 2], 2.1, grace=1.0)
    assert t[2] == (2.1, 2.1) and t[1] == (0.0, 2.1)


def _advance(life: Lifecycle, frames: list[list[Candidate]], dt: float = 1.0) -> list[Event]:
    state, events = LifecycleState(), []
    for i, cands in enumerate(frames):
        state, new = life.advance(state, cands, i * dt, context=ctx(i))
        events.extend(new)
    return events + life.close_all(state, (len(frames) - 1) * dt, context=ctx(len(frames) - 1))


def test_lifecycle_opens_after_min_duration_updates_on_member_change_and_closes_after_grace() -> None:
    life = Lifecycle("demo", "r", min_duration=2.0, end_grace=2.0, update_every=100.0)
    c = lambda members, score=0.5: [Candidate(7, 0.0, members, ("person",) * len(members), score)]  # noqa: E731
    frames = [c((1, 2)), c((1, 2)), c((1, 2)), c((1, 2, 3), 0.9), c((1, 2, 3)), [], [], [], []]
    events = _advance(life, frames)
    assert [e.status for e in events] == ["open", "updated", "closed"]
    assert {e.id for e in events} == {"cam:r:0"}
    opened, updated, closed = events
    assert opened.start == 0.0 and opened.end == 2.0  # starts when the condition began, opens at 2 s
    assert updated.member_ids == (1, 2, 3)
    assert closed.end == 4.0 and closed.evidence["duration"] == 4.0  # end = last time it held
    assert closed.best_frame_seq == 3 and closed.score == pytest.approx(0.9)


def test_lifecycle_gap_within_grace_is_one_event_and_longer_gap_two() -> None:
    life = Lifecycle("demo", "r", min_duration=0.0, end_grace=2.5, update_every=100.0)
    one = [Candidate(1, 0.0)]
    short_gap = _advance(life, [one, one, [], [], one, one])
    assert len({e.id for e in short_gap}) == 1
    long_gap = _advance(life, [one, one, [], [], [], [Candidate(1, 5.0)]])
    assert len({e.id for e in long_gap}) == 2 and sum(e.status == "closed" for e in long_gap) == 2


def test_lifecycle_refreshes_evidence_every_update_every_seconds() -> None:
    life = Lifecycle("demo", "r", min_duration=0.0, end_grace=1.0, update_every=3.0)
    events = _advance(life, [[Candidate(1, 0.0)]] * 10)
    assert [e.status for e in events].count("updated") == 3  # at 3, 6 and 9 s


# -- engine, config, event log ----------------------------------------------------------------------------

CAM = {
    "id": "cam", "source": "x.mp4",
    "scene": {"lines": [{"id": "gate", "a": [0.0, 0.5], "b": [1.0, 0.5]}]},
    "rules": [{"kind": "line_count", "id": "count", "line": "gate", "classes": ["car"]}],
}


def _car(track_id: int, y: float, state: int = TrackState.CONFIRMED) -> Tracks:
    xyxy = np.array([[300, y - 50, 360, y]], np.float32)
    return Tracks([track_id], xyxy, [CAR], [0.9], [[0.0, 40.0]], [3], [state])


def test_config_rejects_rules_on_missing_geometry_and_duplicate_ids(tmp_path: Path) -> None:
    bad = {**CAM, "rules": [{**CAM["rules"][0], "line": "nope"}]}
    with pytest.raises(ConfigError, match=r"cameras\.0.*line 'nope' is not a line of this camera"):
        parse_config({"cameras": [bad]}, path=tmp_path / "c.yaml")
    dup = {**CAM, "rules": [CAM["rules"][0], CAM["rules"][0]]}
    with pytest.raises(ConfigError, match="rule ids must be unique"):
        parse_config({"cameras": [dup]}, path=tmp_path / "c.yaml")
    unknown = {**CAM, "rules": [{"kind": "telepathy", "id": "x"}]}
    with pytest.raises(ConfigError, match=r"cameras\.0\.rules\.0.*telepathy"):
        parse_config({"cameras": [unknown]}, path=tmp_path / "c.yaml")


def test_engine_runs_rules_in_order_and_refuses_time_going_back(tmp_path: Path) -> None:
    cam = parse_config({"cameras": [CAM]}, path=tmp_path / "c.yaml").cameras[0]
    engine = RuleEngine(cam.id, cam.scene, cam.rules)
    events = []
    for i, y in enumerate(np.linspace(100, 400, 8)):
        events += engine.step(_car(1, float(y)), seq=i, timestamp=i * 0.2, frame_size=(W, H))
    assert [(e.kind, e.evidence["direction"]) for e in events] == [("line_crossing", 1)]
    with pytest.raises(ValueError, match="went backwards"):
        engine.step(Tracks.empty(), seq=99, timestamp=0.0, frame_size=(W, H))
    assert engine.close() == [] and engine.close() == []


def test_event_log_round_trips_events_exactly(tmp_path: Path) -> None:
    ev = Event("cam:r:0", "gathering", "r", "cam", "updated", 1 / 3, 2.5, (3, 9), ("person", "person"), 0.7,
               {"size": np.int64(2), "spread_m": np.float32(1.25), "nested": {"a": [1, 2]}}, 12, "square")
    path = tmp_path / "e.jsonl"
    writer = EventLogWriter(path)
    writer.write([ev, ev])
    writer.close()
    back = read_events(path)
    assert len(back) == 2 and back[0].start == 1 / 3 and back[0].member_ids == (3, 9)
    assert back[0].evidence == {"size": 2, "spread_m": 1.25, "nested": {"a": [1, 2]}}
    assert json.loads(event_json(ev))["zone_id"] == "square"
    path.write_text('{"id": "x"}\n')
    with pytest.raises(ValueError, match=r"e\.jsonl:1: not an event record"):
        read_events(path)


# -- frame index and replay -------------------------------------------------------------------------------


def _write_log(tmp_path: Path, frames: list[Tracks], *, dt: float = 0.2) -> Path:
    path = tmp_path / "cam.tracks.parquet"
    writer = ParquetTrackWriter(path, flush_rows=4)
    for i, t in enumerate(frames):
        writer.write(TrackedFrame(Frame("cam", 2 * i, i * dt, np.zeros((H, W, 3), np.uint8)), t))
    writer.close()
    return path


def test_frame_index_lists_every_analysed_frame_with_its_size(tmp_path: Path) -> None:
    path = _write_log(tmp_path, [_car(1, 100), Tracks.empty(), _car(1, 300)])
    index = pl.read_parquet(frames_path_for(path))
    assert list(index.columns) == list(FRAME_SCHEMA)
    assert index["seq"].to_list() == [0, 2, 4] and index["tracks"].to_list() == [1, 0, 1]
    assert index["width"].to_list() == [W] * 3 and index["height"].to_list() == [H] * 3
    frames = list(load_frames(path))
    assert [len(f.tracks) for f in frames] == [1, 0, 1] and frames[1].frame_size == (W, H)


def test_replay_matches_stepping_the_engine_live(tmp_path: Path) -> None:
    cam = parse_config({"cameras": [CAM]}, path=tmp_path / "c.yaml").cameras[0]
    ys = [100, 150, 200, 260, 320, 380, 420]
    frames = [_car(1, y) if i != 3 else Tracks.empty() for i, y in enumerate(ys)]
    frames += [Tracks.empty()] * 3
    live = RuleEngine(cam.id, cam.scene, cam.rules)
    expected = [e for i, t in enumerate(frames) for e in live.step(t, seq=2 * i, timestamp=i * 0.2, frame_size=(W, H))]
    expected += live.close()
    path = _write_log(tmp_path, frames)
    assert replay(path, cam) == expected and len(expected) == 1


def test_replay_without_index_needs_a_frame_size(tmp_path: Path) -> None:
    path = _write_log(tmp_path, [_car(1, 100), _car(1, 300)])
    frames_path_for(path).unlink()
    with pytest.raises(ReplayError, match="no frame index.*frame size"):
        list(load_frames(path))
    assert [f.frame_size for f in load_frames(path, frame_size=(W, H))] == [(W, H), (W, H)]
    other = tmp_path / "other.parquet"
    pl.DataFrame({"a": [1]}).write_parquet(other)
    with pytest.raises(ReplayError, match="not a track log"):
        list(load_frames(other, frame_size=(W, H)))


def test_lifecycle_for_counts_ignores_member_churn_between_refreshes() -> None:
    life = Lifecycle("demo", "r", min_duration=0.0, end_grace=1.0, update_every=4.0, update_on_members=False)
    frames = [[Candidate(0, 0.0, (i, i + 1))] for i in range(9)]  # members change every frame
    events = _advance(life, frames)
    assert [e.status for e in events] == ["open", "updated", "updated", "closed"]  # at 4 and 8 s only


# -- command line -----------------------------------------------------------------------------------------


def _cli(*argv: str) -> int:
    from analytics.cli import main

    return main(list(argv))


def test_cli_replay_writes_the_events_and_names_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import yaml

    log = _write_log(tmp_path, [_car(1, y) for y in (100, 200, 300, 400)])
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"cameras": [CAM]}))
    out = tmp_path / "events.jsonl"
    assert _cli("replay", str(log), "--config", str(config), "--out", str(out)) == 0
    assert [e.kind for e in read_events(out)] == ["line_crossing"]
    assert _cli("replay", str(tmp_path / "nope.parquet"), "--config", str(config)) == 2
    assert "track log" in capsys.readouterr().err
    assert _cli("replay", str(log), "--config", str(config), "--camera", "other") == 2
    assert "camera 'other' is not in" in capsys.readouterr().err
    assert _cli("baseline", "learn", str(log), "--config", str(config)) == 2
    assert "has no abnormal_flow rule" in capsys.readouterr().err
