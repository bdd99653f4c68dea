"""Events of the whole pipeline on PETS09-S2L1 against reference events from the ground truth.

``analytics run configs/pets09.yaml`` (detector, tracker, rules: gathering, loitering, occupancy, intrusion,
line count) on the 795 frames; the same rules replayed on the ground-truth tracks give the reference events;
event precision and recall must stay above the bars (the benchmark, ``benchmarks/rules_pets09.py``, reports
0.77 / 0.89 with these settings). The replay of the run's track log must give exactly the live events.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from analytics.config import load_config
from analytics.event_eval import final_events, match_events, track_id_mapping
from analytics.evaluation import mot_to_track_log, read_mot
from analytics.eventlog import read_events
from analytics.replay import replay

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "pets09.yaml"
BARS = {"precision": 0.65, "recall": 0.80}


@pytest.fixture(scope="module")
def pets_run(tmp_path_factory: pytest.TempPathFactory, footage: Path) -> Path:
    out = tmp_path_factory.mktemp("pets09")
    subprocess.run([sys.executable, "-m", "analytics.cli", "run", str(CONFIG), "--out", str(out), "--no-progress"],
                   check=True, timeout=1200, capture_output=True)
    return out


def test_pipeline_events_match_the_ground_truth_reference(pets_run: Path, footage: Path, tmp_path: Path) -> None:
    camera = load_config(CONFIG).cameras[0]
    mot = read_mot(footage / "mot" / "PETS09-S2L1" / "gt" / "gt.txt")
    gt_log = tmp_path / "gt.tracks.parquet"
    mot_to_track_log(mot.filter(pl.col("conf") != 0), camera_id=camera.id, fps=7.0).write_parquet(gt_log)
    reference = replay(gt_log, camera, frame_size=(768, 576))
    kinds = {e.kind for e in final_events(reference)}
    assert kinds >= {"gathering", "loitering", "occupancy", "intrusion", "line_crossing"}  # a meaningful reference
    pipeline = read_events(pets_run / f"{camera.id}.events.jsonl")
    id_map = track_id_mapping(pl.read_parquet(pets_run / f"{camera.id}.tracks.parquet"), pl.read_parquet(gt_log))
    match = match_events(pipeline, reference, id_map=id_map)
    for name, bar in BARS.items():
        assert getattr(match, name) >= bar, f"event {name} {getattr(match, name):.2f} < {bar}: {match.to_dict()}"


def test_replaying_the_run_gives_exactly_its_events(pets_run: Path) -> None:
    camera = load_config(CONFIG).cameras[0]
    live = read_events(pets_run / f"{camera.id}.events.jsonl")
    assert len(live) > 20 and replay(pets_run / f"{camera.id}.tracks.parquet", camera) == live
