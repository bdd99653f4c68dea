"""Rules on real footage: the real detector and tracker, then the rules, checked against hand labels.

* ``traffic/vct_input_video.mp4``: vehicle crossings of a line across the street, per direction, against
  ``tests/data/vct_line_counts.yaml`` (made by looking at the clip); the replay of the run's track log
  gives exactly the live run's events.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from analytics.config import RunConfig, parse_config
from analytics.detectors import create_detector
from analytics.eventlog import read_events
from analytics.pipeline import Runner
from analytics.replay import replay
from analytics.sources import open_source

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parent.parent / "data"


def _run(cfg: RunConfig) -> Path:
    classes = tuple(sorted({cid for cam in cfg.cameras for cid in cam.detection.class_ids}))
    detector = create_detector(cfg.detector, classes=classes, confidence=min(c.detection.confidence for c in cfg.cameras))
    try:
        report = Runner(cfg, detector, open_source=open_source).run()
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
