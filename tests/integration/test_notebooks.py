"""The analyst notebooks run top to bottom on small real data, and the tuned config changes what is flagged.

One ``analytics run`` (detector, tracker, rules, alert store) on the first 240 frames of PETS09-S2L1 (and the
8 frames of MOT17-04 in the shared folder, a second sequence for the perception report) gives every input:
the track log to tune on, the MOT results to score, and the alerts, which the test closes with the
hand-judged verdicts of
``tests/data/notebooks/pets09_verdicts.yaml`` as operators and a supervisor would in the console. Each notebook
is executed with nbclient, its parameters given through ``ANALYTICS_NB_*`` variables. Then the tuned config
the tuning notebook wrote is replayed on the same track log: it must flag different events than the
original config and score at least as well on the same targets.

The committed notebooks must carry no outputs (checked without footage).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NAMES = ("threshold_tuning.ipynb", "alert_audit.ipynb", "perception_report.ipynb")
VERDICTS = ROOT / "tests" / "data" / "notebooks" / "pets09_verdicts.yaml"
PETS_FRAMES, MOT17_FRAMES = 240, 8
#: A flow rule for the test (configs/pets09.yaml has none): more than 1 person over the west line in 10 s.
FLOW_RULE = {"kind": "abnormal_flow", "id": "west-flow", "line": "west", "classes": ["person"], "window": 10,
             "hop": 2, "bucket": "none", "max_count": 1, "severity": 0.5}
#: A small grid so the test stays short (the notebook's default grid is larger).
GRID = {"gathering": {"min_people": [2, 3], "min_duration": [4.0, 8.0], "max_speed_mps": [0.4, 0.6]},
        "loitering": {"min_duration": [5.0, 8.0, 12.0], "max_speed_mps": [0.3, 0.5]},
        "abnormal_flow": {"max_count": [1, 2, 3], "window": [10.0, 20.0]}}


def test_committed_notebooks_have_no_outputs() -> None:
    import nbformat

    for name in NAMES:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code, name
        for cell in code:
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: cell {cell.get('id')} has outputs"
        assert "notebook_params(" in code[0].source, f"{name}: the first code cell must declare the parameters"


# -- the data: one short run -------------------------------------------------------------------------------------

def _slice(sequence: Path, out: Path, frames: int) -> Path:
    """A MOTChallenge folder with the first ``frames`` images of ``sequence`` (symbolic links, no copies)."""
    (out / "img1").mkdir(parents=True)
    info = (sequence / "seqinfo.ini").read_text(encoding="utf-8")
    (out / "seqinfo.ini").write_text("\n".join(f"seqLength={frames}" if line.startswith("seqLength=") else line
                                               for line in info.splitlines()) + "\n", encoding="utf-8")
    for image in sorted((sequence / "img1").iterdir())[:frames]:
        (out / "img1" / image.name).symlink_to(image)
    return out


def _run_config(work: Path, mot: Path) -> Path:
    """configs/pets09.yaml on the PETS09 slice, with the flow rule, per-incident alerts and no evidence clips,
    plus a MOT17-04 camera (persons, default tracker)."""
    data = yaml.safe_load((ROOT / "configs" / "pets09.yaml").read_text(encoding="utf-8"))
    pets = data["cameras"][0]
    pets["source"] = str(_slice(mot / "PETS09-S2L1", work / "PETS09-S2L1", PETS_FRAMES))
    pets["rules"].append(FLOW_RULE)
    data["cameras"].append({"id": "mot17-04", "source": str(_slice(mot / "MOT17-04-FRCNN", work / "MOT17-04",
                                                                    MOT17_FRAMES)),
                            "fps": None, "benchmark": True, "detection": {"classes": ["person"], "confidence": 0.3}})
    data["alerts"]["evidence"] = {"enabled": False}
    data["alerts"]["default"] = {"merge_gap": 0, "cooldown": 0}
    data["output"] = {"dir": str(work / "run")}
    path = work / "pets09-ci.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _judge(store_path: Path) -> int:
    """Close the run's alerts with the hand-judged verdicts, as an operator (and a supervisor's review) would;
    returns how many alerts were judged."""
    import dataclasses

    from analytics.alerts.model import Transition
    from analytics.alerts.store import AlertStore

    spec = yaml.safe_load(VERDICTS.read_text(encoding="utf-8"))
    judged = 0  # the operator takes 20 s, then 35 s, 50 s... to acknowledge
    with AlertStore.open(f"sqlite:///{store_path}") as store:
        alerts = store.list_alerts(camera_id=spec["camera"])
        for v in spec["verdicts"]:
            hits = [a for a in alerts if a.rule_id == v["rule"] and a.start <= v["at"] <= a.end]
            if len(hits) != 1:
                continue
            alert, at = hits[0], hits[0].created_at
            ack = 20.0 + 15.0 * judged
            for status, dt, verdict in (("seen", 5.0, None), ("acknowledged", ack, None),
                                        ("closed", ack + 40.0, v.get("operator", v["verdict"]))):
                alert = dataclasses.replace(alert, status=status, verdict=verdict)
                store.record_transition(alert, Transition(alert.id, status, "op-ci", at + dt, verdict=verdict,
                                                          comment=v["comment"] if status == "closed" else ""))
            if "operator" in v:
                store.record_review(alert.id, verdict=v["verdict"], comment=v["comment"], user="sup-ci",
                                    at=at + 600.0)
            judged += 1
    return judged


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, footage: Path) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("notebooks")
    config = _run_config(work, footage / "mot")
    subprocess.run([sys.executable, "-m", "analytics.cli", "run", str(config), "--no-progress"], check=True,
                   timeout=600, capture_output=True, cwd=work)
    out = work / "run"
    judged = _judge(out / "alerts.db")
    assert judged >= 4, f"only {judged} of the hand-judged alerts were found in {out / 'alerts.db'}"
    return {"work": work, "config": config, "out": out, "gt": footage / "mot" / "PETS09-S2L1" / "gt" / "gt.txt",
            "mot17_gt": footage / "mot" / "MOT17-04-FRCNN" / "gt" / "gt.txt"}


def _execute(name: str, env: dict[str, object], monkeypatch: pytest.MonkeyPatch, save: Path) -> dict:
    """Run a notebook top to bottom in a fresh kernel (cwd notebooks/, as Jupyter does); fail with the cell."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    for key, value in env.items():
        monkeypatch.setenv(f"ANALYTICS_NB_{key}", value if isinstance(value, str) else json.dumps(value))
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}})
    started = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        pytest.fail(f"{name} failed: {err}")
    finally:
        nbformat.write(nb, save / name)  # the executed copy, for a look after a failure
    print(f"{name}: {time.perf_counter() - started:.1f} s")
    return nb


def _text(nb: dict) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") + output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


# -- the notebooks ----------------------------------------------------------------------------------------------

@pytest.mark.integration
@pytest.mark.slow
def test_threshold_tuning_writes_a_config_that_changes_what_is_flagged(
        run: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from analytics.analysis import sweep
    from analytics.analysis import targets as tg
    from analytics.analysis.audit import store_url
    from analytics.config import load_config
    from analytics.evaluation import read_mot
    from analytics.replay import replay

    out = run["work"] / "tuning"
    tuned_path = out / "pets09-ci.tuned.yaml"
    log_path = run["out"] / "pets09.tracks.parquet"
    nb = _execute("threshold_tuning.ipynb", {
        "CONFIG": str(run["config"]), "CAMERA": "pets09", "TRACK_LOG": str(log_path), "GT": str(run["gt"]),
        "ALERT_STORE": str(run["out"] / "alerts.db"), "GRID": GRID, "OUT_DIR": str(out),
        "TUNED_CONFIG": str(tuned_path)}, monkeypatch, run["work"])
    assert "child runs" in _text(nb) and (out / "mlflow.db").is_file()

    original = {c.id: c for c in load_config(run["config"]).cameras}["pets09"]
    tuned = {c.id: c for c in load_config(tuned_path).cameras}["pets09"]
    before, after = replay(log_path, original), replay(log_path, tuned)
    assert not sweep.event_changes(before, after).is_empty(), "the tuned config flags the same events"

    seq = tg.sequence_info(run["gt"])
    targets = tg.Targets(
        reference=tg.build_reference(original, pl.read_parquet(log_path), read_mot(run["gt"]), fps=seq.fps,
                                     frame_size=seq.frame_size, work_dir=run["work"] / "check"),
        verdicts=tg.load_verdicts(store_url(run["out"] / "alerts.db"), camera_id="pets09"))
    table, _ = sweep.compare(log_path, {"configured": original, "tuned": tuned}, targets)
    f1 = {(r["config"], r["rule_id"]): r["f1"] for r in table.iter_rows(named=True)}
    for rule in original.rules:
        assert f1["tuned", rule.id] >= f1["configured", rule.id] - 1e-9, (rule.id, table)
    assert any(f1["tuned", r.id] > f1["configured", r.id] for r in original.rules), table
    assert f1["tuned", "all"] >= f1["configured", "all"], table


@pytest.mark.integration
@pytest.mark.slow
def test_alert_audit_reports_precision_from_the_verdicts(run: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    out = run["work"] / "audit"
    nb = _execute("alert_audit.ipynb", {"ALERT_STORE": str(run["out"] / "alerts.db"), "CONFIG": str(run["config"]),
                                        "MIN_REVIEWED": 1, "OUT_DIR": str(out)}, monkeypatch, run["work"])
    frame = pl.read_parquet(out / "audit.parquet")
    group = frame.filter(pl.col("rule_id") == "group")
    assert sorted(group["verdict"].drop_nulls().to_list()) == ["false_alarm", "true_alert"]  # the review counts
    assert "precision by rule" in _text(nb)


@pytest.mark.integration
@pytest.mark.slow
def test_perception_report_scores_each_sequence(run: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    out = run["work"] / "perception"
    sequences = [{"name": "PETS09-S2L1", "result": str(run["out"] / "pets09.mot.txt"), "gt": str(run["gt"])},
                 {"name": "MOT17-04", "result": str(run["out"] / "mot17-04.mot.txt"), "gt": str(run["mot17_gt"]),
                  "classes": [1]}]
    _execute("perception_report.ipynb", {"SEQUENCES": sequences, "OUT_DIR": str(out), "DRAW": 1}, monkeypatch,
             run["work"])
    pets = pl.read_parquet(out / "PETS09-S2L1.frame_errors.parquet")
    assert pets["frame"].max() == PETS_FRAMES and pets["tp"].sum() > 0.7 * pets["gt"].sum()
    assert pl.read_parquet(out / "MOT17-04.frame_errors.parquet")["frame"].max() == MOT17_FRAMES
