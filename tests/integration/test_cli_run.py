"""`analytics run` / `detect` / `eval-mot` on real footage with the real detector and real sources."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from analytics.config import parse_config
from analytics.detectors import create_detector
from analytics.pipeline import Runner
from analytics.sources import open_source
from analytics.types import Health
from support import free_port, wait_for

pytestmark = pytest.mark.integration
ANALYTICS = [sys.executable, "-m", "analytics.cli"]






def test_bad_cameras_fail_clearly_while_the_good_one_goes_on(tmp_path: Path, footage: Path) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(50_000))
    url = f"http://127.0.0.1:{free_port()}/cam.ts"
    data = {
        "detector": {"batch": 2},
        "output": {"dir": str(tmp_path / "out")},
        "cameras": [
            {"id": "good", "source": str(footage / "traffic" / "vct_input_video.mp4"), "fps": 3},
            {"id": "missing", "source": str(tmp_path / "nope.mp4")},
            {"id": "corrupt", "source": str(corrupt)},
            {"id": "unreachable", "source": url, "reconnect_initial": 0.2, "reconnect_max": 1.0},
        ],
    }
    cfg = parse_config(data, path=tmp_path / "run.yaml")
    detector = create_detector(cfg.detector, classes=(0, 1, 2, 3, 5, 7), confidence=0.25)
    runner = Runner(cfg, detector, open_source=open_source)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("report", runner.run()), daemon=True)
    thread.start()
    cams = lambda: {c.camera_id: c for c in runner.snapshot()}  # noqa: E731
    wait_for(lambda: cams()["good"].health is Health.FINISHED, 240, "the good camera to finish")
    snap = cams()
    assert snap["unreachable"].health in (Health.OFFLINE, Health.STARTING)
    runner.stop()
    thread.join(timeout=30)
    by_id = {c.camera_id: c for c in result["report"].cameras}
    assert by_id["good"].frames > 100
    assert by_id["missing"].health is Health.FAILED and "nope.mp4" in by_id["missing"].error
    assert by_id["corrupt"].health is Health.FAILED and "corrupt.mp4" in by_id["corrupt"].error
    assert by_id["unreachable"].frames == 0 and url in (by_id["unreachable"].error or "")
    tracks = pl.read_parquet(tmp_path / "out" / "good.tracks.parquet")
    assert {"car"} <= set(tracks["class_name"].unique().to_list())


def test_ctrl_c_stops_cleanly_and_flushes_logs(tmp_path: Path, footage: Path) -> None:
    cfg = tmp_path / "loop.yaml"
    cfg.write_text(
        "detector: {batch: 1}\n"
        f"output: {{dir: {tmp_path / 'out'}}}\n"
        "cameras:\n"
        f"  - {{id: loop, source: {footage / 'street' / 'one-by-one-person-detection.mp4'}, fps: 5, loop: true,"
        " detection: {classes: [person]}}\n"
    )
    proc = subprocess.Popen([*ANALYTICS, "run", str(cfg), "--no-progress"], stderr=subprocess.PIPE, text=True)
    try:
        mot = tmp_path / "out" / "loop.mot.txt"
        wait_for(lambda: mot.exists(), 120, "the run to start")
        time.sleep(15)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    report = json.loads((tmp_path / "out" / "run_report.json").read_text())
    frames = report["cameras"][0]["frames"]
    assert frames > 10
    df = pl.read_parquet(tmp_path / "out" / "loop.tracks.parquet")  # a readable file: the footer was written
    assert df["seq"].n_unique() <= frames and df.height > 0
    assert "stopping, flushing logs" in err


def test_invalid_config_fails_before_anything_starts(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("cameras:\n  - id: a\n    source: a.mp4\n    fps: fast\n")
    proc = subprocess.run([*ANALYTICS, "run", str(cfg)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert str(cfg) in proc.stderr and "cameras.0.fps" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_detect_prints_the_bus_and_persons(shared: Path) -> None:
    proc = subprocess.run([*ANALYTICS, "detect", str(shared / "images" / "bus.jpg"), "--json"],
                          capture_output=True, text=True, timeout=180, check=True)
    rows = json.loads(proc.stdout)
    classes = sorted(r["class"] for r in rows)
    assert classes.count("bus") == 1 and classes.count("person") >= 3


def test_eval_mot_scores_ground_truth_against_itself(footage: Path) -> None:
    gt = footage / "mot" / "PETS09-S2L1" / "gt" / "gt.txt"
    proc = subprocess.run([*ANALYTICS, "eval-mot", str(gt), "--gt", str(gt), "--keep-zero-flag", "--json"],
                          capture_output=True, text=True, timeout=300, check=True)
    metrics = json.loads(proc.stdout)
    assert metrics["HOTA"] > 0.99 and metrics["MOTA"] > 0.99 and metrics["IDF1"] > 0.99


def test_missing_image_is_a_clear_error(tmp_path: Path) -> None:
    proc = subprocess.run([*ANALYTICS, "detect", str(tmp_path / "none.jpg")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "none.jpg" in proc.stderr
