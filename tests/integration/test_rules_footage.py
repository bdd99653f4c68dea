"""Rules on real footage: the real detector and tracker, then the rules, checked against hand labels.

* ``traffic/vct_input_video.mp4``: vehicle crossings of a line across the street, per direction, against
  ``tests/data/vct_line_counts.yaml`` (made by looking at the clip); the replay of the run's track log
  gives exactly the live run's events.
* ``street/one-by-one-person-detection.mp4``: each person lingering at the table gives one loitering event,
  against the visits in ``tests/data/one_by_one_visits.yaml`` (made by looking at the clip).
* ``traffic/vdh_video1.avi``: ``analytics baseline learn`` learns the freeway's flow over a line, after
  which the steady flow of the clip is not flagged, while the same log with the traffic tripled in its
  second half is flagged as a surge.
"""

from __future__ import annotations

from pathlib import Path

import subprocess
import sys

import polars as pl
import pytest
import yaml

from analytics.config import RunConfig, parse_config
from analytics.detectors import create_detector
from analytics.event_eval import final_events
from analytics.eventlog import read_events
from analytics.pipeline import Runner
from analytics.alerts.store import AlertStore
from analytics.baseline import Baseline
from analytics.pipeline.alerting import AlertStage
from analytics.config import load_config
from analytics.replay import replay
from analytics.sources import open_source
from analytics.tracklog import frames_path_for

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parent.parent / "data"


def _run(cfg: RunConfig, *, alerts: AlertStage | None = None) -> Path:
    classes = tuple(sorted({cid for cam in cfg.cameras for cid in cam.detection.class_ids}))
    detector = create_detector(cfg.detector, classes=classes, confidence=min(c.detection.confidence for c in cfg.cameras))
    runner = Runner(cfg, detector, open_source=open_source)
    if alerts is not None:
        runner.event_subscribers.append(alerts.process)
    try:
        report = runner.run()
    finally:
        detector.close()
    assert all(c.error is None for c in report.cameras), [c.error for c in report.cameras]
    return Path(cfg.output.dir)


@pytest.fixture(scope="module")
def vct_run(footage: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunConfig, Path, dict]:
    labels = yaml.safe_load((DATA / "vct_line_counts.yaml").read_text())
    out = tmp_path_factory.mktemp("vct")
    data = {
        "detector": {"batch": 2},
        "output": {"dir": str(out), "mot": False},
        "cameras": [{
            "id": "street", "source": str(footage / labels["clip"]), "fps": 8,
            "detection": {"classes": ["person", "bicycle", "car", "motorcycle", "bus", "truck"], "confidence": 0.3},
            "scene": {"lines": [labels["line"]]},
            "rules": [{"kind": "line_count", "id": "vehicles", "line": labels["line"]["id"],
                       "classes": ["car", "motorcycle", "bus", "truck"]},
                      {"kind": "line_count", "id": "bicycles", "line": labels["line"]["id"], "classes": ["bicycle"]}],
        }],
    }
    cfg = parse_config(data, path=out / "run.yaml")
    return cfg, _run(cfg), labels


def test_vehicle_counts_per_direction_match_the_hand_labels(vct_run) -> None:
    _, out, labels = vct_run
    events = read_events(out / "street.events.jsonl")
    counted = {rule: {"positive": 0, "negative": 0} for rule in ("vehicles", "bicycles")}
    for e in events:
        counted[e.rule_id]["positive" if e.evidence["direction"] == 1 else "negative"] += 1
    assert counted["vehicles"] == labels["counts"]["vehicles"]
    assert counted["bicycles"] == labels["counts"]["bicycle"]
    # each labelled crossing is matched by a counted one in the same direction within 1 s
    times = sorted(e.start for e in events if e.rule_id == "vehicles")
    for crossing in labels["crossings"]:
        assert min(abs(t - crossing["t"]) for t in times) <= 1.0, crossing


def test_replaying_the_track_log_gives_exactly_the_live_events(vct_run) -> None:
    cfg, out, _ = vct_run
    live = read_events(out / "street.events.jsonl")
    assert live and replay(out / "street.tracks.parquet", cfg.cameras[0]) == live


@pytest.fixture(scope="module")
def desk_run(footage: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    labels = yaml.safe_load((DATA / "one_by_one_visits.yaml").read_text())
    out = tmp_path_factory.mktemp("desk")
    data = {
        "detector": {"batch": 2},
        "output": {"dir": str(out), "mot": False},
        "cameras": [{
            "id": "desk", "source": str(footage / labels["clip"]), "fps": 5,
            "detection": {"classes": ["person"], "confidence": 0.3},
            "scene": {"zones": [labels["table_zone"]]},
            "rules": [{"kind": "loitering", "id": "at-table", "zone": labels["table_zone"]["id"], "min_duration": 6}],
        }],
    }
    cfg = parse_config(data, path=out / "run.yaml")
    store = AlertStore.open(f"sqlite:///{out / 'alerts.db'}")
    try:
        _run(cfg, alerts=AlertStage(cfg.alerts, store, cfg.cameras))
    finally:
        store.close()
    return out, labels


def test_each_person_lingering_at_the_table_gives_one_loitering_event(desk_run) -> None:
    out, labels = desk_run
    events = sorted(final_events(read_events(out / "desk.events.jsonl")), key=lambda e: e.start)
    visits = labels["visits"]
    assert [e.kind for e in events] == ["loitering"] * len(visits)
    assert len({e.member_ids for e in events}) == len(visits) and all(len(e.member_ids) == 1 for e in events)
    for visit, event in zip(visits, events, strict=True):
        # labels are +-3 s; the stay starts when the feet enter the zone and ends when they leave it
        assert visit["arrive"] - 4 <= event.start <= visit["arrive"] + 8, (visit, event.start)
        assert visit["leave"] - 8 <= event.end <= visit["leave"] + 4, (visit, event.end)


FREEWAY_CONFIG = """
output: {{dir: {out}, mot: false}}
cameras:
  - id: freeway
    source: {source}
    fps: 7.5
    detection: {{classes: [car, motorcycle, bus, truck], confidence: 0.3}}
    scene:
      lines: [{{id: overpass, a: [0.68, 0.6], b: [0.0, 0.6]}}]
    rules:
      - {{kind: abnormal_flow, id: flow, line: overpass, window: 10, hop: 2, bucket: hour_of_day,
         baseline: learned/freeway-flow.json}}
"""


@pytest.fixture(scope="module")
def freeway_run(footage: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("freeway")
    config = out / "freeway.yaml"
    config.write_text(FREEWAY_CONFIG.format(out=out / "run", source=footage / "traffic" / "vdh_video1.avi"))
    return config, _run(load_config(config))


def _tripled_after(log: Path, t0: float, dest: Path) -> Path:
    """The log with two shifted copies of every track row after ``t0`` (new ids): three times the traffic."""
    df = pl.read_parquet(log)
    later = df.filter(pl.col("timestamp") > t0)
    copies = [later.with_columns(pl.col("track_id") + k * 100_000, *(pl.col(c) + 3.0 * k for c in ("x1", "x2")),
                                 pl.col("anchor_x") + 3.0 * k) for k in (1, 2)]
    pl.concat([df, *copies]).sort("seq", maintain_order=True).write_parquet(dest)
    frames_path_for(dest).write_bytes(frames_path_for(log).read_bytes())
    return dest


def test_a_learned_baseline_does_not_flag_the_steady_flow_but_flags_a_surge(freeway_run, tmp_path: Path) -> None:
    config, out = freeway_run
    log = out / "freeway.tracks.parquet"
    unlearned = read_events(out / "freeway.events.jsonl")
    assert unlearned == []  # no baseline yet and no fixed thresholds: nothing to compare with
    learn = subprocess.run([sys.executable, "-m", "analytics.cli", "baseline", "learn", str(log), "--config", str(config)],
                           capture_output=True, text=True, timeout=300)
    assert learn.returncode == 0, learn.stderr
    baseline = Baseline.load(config.parent / "learned" / "freeway-flow.json")
    pooled = baseline.pooled
    assert pooled.windows >= 6 and pooled.mean["total"] > 2  # a few vehicles per 10 s window on this freeway
    camera = load_config(config).cameras[0]  # now reads the learned baseline
    steady = [e for e in replay(log, camera) if e.kind == "abnormal_flow"]
    assert steady == []
    surge = replay(_tripled_after(log, 16.0, tmp_path / "freeway.tracks.parquet"), camera)
    flagged = final_events(e for e in surge if e.kind == "abnormal_flow")
    assert flagged and {e.evidence["direction"] for e in flagged} == {"surge"}
    assert all(e.start >= 16.0 - 10 for e in flagged)  # only windows overlapping the tripled half


def test_the_visits_to_the_table_make_one_stored_alert(desk_run) -> None:
    out, labels = desk_run
    events = final_events(read_events(out / "desk.events.jsonl"))
    with AlertStore.open(f"sqlite:///{out / 'alerts.db'}") as store:
        alerts = store.list_alerts()
    # one place, one kind, visits a few seconds apart: merged into one alert, updated, not six
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.kind, alert.zone_id, alert.status) == ("loitering", labels["table_zone"]["id"], "new")
    assert sorted(alert.event_ids) == sorted(e.id for e in events)
    assert set(alert.member_ids) == {m for e in events for m in e.member_ids}
    assert 0 < alert.priority <= 1 and {"severity", "evidence", "zone", "recency"} <= set(alert.breakdown)
