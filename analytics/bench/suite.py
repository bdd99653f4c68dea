"""The benchmark suite: runs a manifest's subset, scores it, writes the report, logs to MLflow, checks.

Command line: :func:`analytics.bench.command.main` (``benchmarks/suite.py``; see its docstring). Each run of
the plan is a separate process (:mod:`analytics.bench.worker`): one per sequence and detector variant, one per
ultralytics baseline, one for the capacity search. Scoring, report, MLflow and the check happen here.

Exit status: 0 done (and the check passed, when asked); 1 a run failed or the check failed; 2 bad input
(manifest, reference file, override), with a message naming it.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from analytics.bench.manifest import Plan, SequenceSpec, variant_input_size
from analytics.bench.report import portable, run_errors
from analytics.paths import PROJECT_ROOT

log = logging.getLogger("analytics.bench")

DEFAULT_MANIFEST = PROJECT_ROOT / "benchmarks" / "manifest.yaml"
DEFAULT_REFERENCE = PROJECT_ROOT / "benchmarks" / "reference.yaml"


class SuiteError(ValueError):
    """Bad input to the suite (an override, a sequence filter); the message names it."""


# ------------------------------------------------------------------------------------------- cameras


def parse_override(text: str) -> tuple[str | None, list[str], Any]:
    """``[SEQUENCE:]KEY.PATH=VALUE`` -> (sequence or None for all, key path, YAML-parsed value)."""
    import yaml

    target, eq, value = text.partition("=")
    if not eq or not target.strip():
        raise SuiteError(f"override {text!r}: expected [SEQUENCE:]KEY=VALUE, e.g. tracker.min_hits=10 or "
                         f"pets09:detection.confidence=0.9")
    seq, colon, key = target.strip().rpartition(":")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as err:
        raise SuiteError(f"override {text!r}: the value is not valid YAML: {err}") from None
    return (seq if colon else None), key.split("."), parsed


def apply_overrides(cam, seq_id: str, overrides: list[str]):
    """The camera config with every override for ``seq_id`` (or for all sequences) applied and re-validated."""
    from pydantic import ValidationError

    from analytics.config import CameraConfig
    from analytics.yamlio import problems

    data = cam.model_dump(mode="json")
    changed = False
    for text in overrides:
        seq, key, value = parse_override(text)
        if seq is not None and seq != seq_id:
            continue
        node = data
        for part in key[:-1]:
            if not isinstance(node, dict) or part not in node:
                raise SuiteError(f"override {text!r}: camera settings have no key {'.'.join(key)}")
            node = node[part]
        if not isinstance(node, dict) or key[-1] not in node:
            raise SuiteError(f"override {text!r}: camera settings have no key {'.'.join(key)}")
        node[key[-1]] = value
        changed = True
    if not changed:
        return cam
    try:
        return CameraConfig.model_validate(data)
    except ValidationError as err:
        raise SuiteError(f"overrides {overrides} give invalid camera settings for {seq_id}: "
                         f"{problems(err)}") from None


def sequence_setup(seq: SequenceSpec, overrides: list[str]):
    """A one-camera run config for a sequence: its config's camera (overrides applied) reading the sequence's
    source, with the config's detector and alerts settings; without a config, default settings and no rules,
    every frame."""
    from analytics.config import CameraConfig, RunConfig, load_config

    if seq.config is None:
        return RunConfig(cameras=(apply_overrides(CameraConfig(id=seq.id, source=seq.source, fps=None,
                                                               benchmark=True), seq.id, overrides),))
    cfg = load_config(seq.config)
    cam = next(c for c in cfg.cameras if seq.camera in (None, c.id))
    cam = apply_overrides(cam.model_copy(update={"source": seq.source}), seq.id, overrides)
    return RunConfig(detector=cfg.detector, alerts=cfg.alerts, cameras=(cam,))


def detector_config(variant, base):
    """The config's detector settings with the variant's backend, model, input size and batch."""
    update = {"backend": variant.backend, "model": variant.model, "imgsz": variant.imgsz}
    if variant.batch is not None:
        update["batch"] = variant.batch
    return base.model_copy(update=update)


# ------------------------------------------------------------------------------------------- workers


def run_worker(job: dict[str, Any], work: Path, name: str) -> dict[str, Any]:
    """Run one job in ``python -m analytics.bench.worker``; its result, or ``{"error": ...}``."""
    work.mkdir(parents=True, exist_ok=True)
    job_path, result_path = work / f"{name}.job.json", work / f"{name}.result.json"
    job_path.write_text(json.dumps(job, indent=2, default=str), encoding="utf-8")
    result_path.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT),
                                                                       os.environ.get("PYTHONPATH")]))}
    load = _load()
    proc = subprocess.run([sys.executable, "-m", "analytics.bench.worker", str(job_path), str(result_path)],
                          cwd=PROJECT_ROOT, env=env, check=False)
    result = {"error": f"worker {name} exited with status {proc.returncode} (its output is above)"}
    if result_path.is_file():
        written = json.loads(result_path.read_text(encoding="utf-8"))
        if proc.returncode == 0 or "error" in written:
            result = written
    return {**result, "load_average": {"before": load, "after": _load()}}


def _score_run(run: dict[str, Any], seq: SequenceSpec, cam, work: Path) -> None:
    """Add ``tracking`` and ``events`` scores to a pipeline run's result, in place."""
    from analytics.bench import scoring
    from analytics.eventlog import read_events

    outputs = run["outputs"]
    frames = scoring.analysed_frames(outputs["parquet"].replace(".tracks.parquet", ".frames.parquet"))
    run["tracking"] = (scoring.score_tracking(outputs["mot"], seq.gt, frames, classes=seq.gt_classes)
                       if seq.gt else None)
    events: dict[str, Any] = {}
    pred = read_events(outputs["events"]) if "events" in outputs else []
    if seq.gt and seq.reference_events and cam.rules:
        gt_log = scoring.gt_track_log(seq.gt, frames, camera_id=cam.id, out=work / "gt.tracks.parquet",
                                      classes=seq.gt_classes)
        ref = scoring.reference_events(cam, gt_log, frames=frames.path)
        events["reference"] = scoring.score_reference_events(pred, ref, pred_log=outputs["parquet"], ref_log=gt_log)
        events["reference"]["reference_events"] = len({e.id for e in ref})
    if seq.labels:
        events["labels"] = scoring.score_labels(pred, seq.labels, until=frames.last_time)
    run["events"] = events or None


# ------------------------------------------------------------------------------------------- the suite


def _tasks(plan: Plan) -> list[tuple[str, Any, Any]]:
    tasks = []
    for run in plan.runs:
        tasks += [("pipeline", run, det) for det in run.detectors]
        if run.baseline:
            tasks.append(("baseline", run, None))
    if plan.capacity is not None:
        tasks.append(("capacity", plan.capacity, None))
    return tasks


def _pipeline_task(plan: Plan, run, det: str, overrides: list[str], work: Path, progress) -> dict[str, Any]:
    seq = plan.manifest.sequence(run.sequence)
    cfg = sequence_setup(seq, overrides)
    cam = cfg.cameras[0]
    cfg = cfg.model_copy(update={"detector": detector_config(plan.manifest.detector(det), cfg.detector)})
    out = _fresh(work / f"{seq.id}__{det}")
    job = {"kind": "pipeline", "config": cfg.model_dump(mode="json"), "out_dir": str(out),
           "max_frames": run.max_frames, "progress": progress, "label": f"{seq.id} / {det}"}
    result = {"sequence": seq.id, "detector": det, "max_frames": run.max_frames,
              "camera_settings": _camera_settings(plan, seq.id, overrides), **run_worker(job, out, "pipeline")}
    if not result.get("error"):
        try:
            _score_run(result, seq, cam, out)
        except Exception as err:  # noqa: BLE001 - a scoring failure is reported with the run, the suite goes on
            log.exception("scoring %s / %s failed", seq.id, det)
            result["error"] = f"scoring failed: {type(err).__name__}: {err}"
    return result


def _baseline_task(plan: Plan, run, overrides: list[str], work: Path, progress) -> dict[str, Any]:
    from analytics.bench import scoring

    seq = plan.manifest.sequence(run.sequence)
    cam = sequence_setup(seq, overrides).cameras[0]
    spec = plan.manifest.baseline
    out = _fresh(work / f"{seq.id}__baseline")
    job = {"kind": "baseline", "camera": cam.model_dump(mode="json"), "model": spec.model, "imgsz": spec.imgsz,
           "tracker": spec.tracker, "out": str(out / "baseline.mot.txt"), "max_frames": run.max_frames,
           "progress": progress, "label": f"{seq.id} / ultralytics baseline"}
    result = {"sequence": seq.id, "model": spec.model, "imgsz": spec.imgsz, "tracker": spec.tracker,
              "compare_to": spec.compare_to, "max_frames": run.max_frames, **run_worker(job, out, "baseline")}
    if not result.get("error") and seq.gt:
        pipeline_out = work / f"{seq.id}__{run.detectors[0]}"
        frames_path = next(pipeline_out.glob("*.frames.parquet"), None)
        if frames_path is not None:
            result["tracking"] = scoring.score_tracking(result["outputs"]["mot"], seq.gt,
                                                        scoring.analysed_frames(frames_path), classes=seq.gt_classes)
    return result


def _capacity_task(plan: Plan, spec, overrides: list[str], work: Path, progress) -> dict[str, Any]:
    from analytics.config import RunConfig

    setups = [sequence_setup(plan.manifest.sequence(seq_id), overrides) for seq_id in spec.sequences]
    cams = tuple(s.cameras[0].model_copy(update={"id": seq_id}) for s, seq_id in zip(setups, spec.sequences,
                                                                                     strict=True))
    variant = plan.manifest.detector(spec.detector)
    cfg = setups[0].model_copy(update={"detector": detector_config(variant, setups[0].detector), "cameras": cams})
    cfg = RunConfig.model_validate(cfg.model_dump())  # camera ids re-checked for uniqueness
    out = _fresh(work / "capacity")
    job = {"kind": "capacity", "config": cfg.model_dump(mode="json"), "spec": spec.model_dump(mode="json"),
           "out_dir": str(out), "progress": progress}
    return {"detector": spec.detector, **run_worker(job, out, "capacity")}


def _fresh(folder: Path) -> Path:
    """An empty work folder: the outputs of an earlier suite run (track logs, alert stores) are removed."""
    import shutil

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _speed_ratios(results: dict[str, Any]) -> None:
    for base in results["baselines"]:
        if base.get("error") or not base.get("fps"):
            continue
        base["speed_ratio"] = {r["detector"]: round(r["fps"] / base["fps"], 3) for r in results["runs"]
                               if r["sequence"] == base["sequence"] and not r.get("error")
                               and r.get("max_frames") == base.get("max_frames")}


def _git() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": None}


def run_suite(plan: Plan, *, work: Path, overrides: list[str] | None = None, progress: bool | None = None,
              command: str = "", manifest_path: str = "") -> dict[str, Any]:
    """Run every task of ``plan`` and return the results (see :mod:`analytics.bench.report` for the metrics)."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    overrides = list(overrides or [])
    plan.check_inputs()
    for seq_id in {r.sequence for r in plan.runs}:
        sequence_setup(plan.manifest.sequence(seq_id), overrides)  # bad overrides fail before any run
    started = time.time()
    m = plan.manifest
    results: dict[str, Any] = {
        "suite": {"subset": plan.subset, "manifest": manifest_path, "command": command,
                  "date": time.strftime("%Y-%m-%d %H:%M"), "git": _git(), "overrides": overrides,
                  "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                              "processor": _cpu_name(), "python": platform.python_version(),
                              "load_average_start": _load()}},
        "detectors": {d.id: {"backend": d.backend, "model": d.model, "input_size": variant_input_size(d)}
                      for d in m.detectors},
        "sequences": {s.id: s.model_dump(mode="json") for s in m.sequences},
        "runs": [], "baselines": [], "capacity": None,
    }
    tasks = _tasks(plan)
    with logging_redirect_tqdm(), tqdm(total=len(tasks), desc=f"suite {plan.subset}", unit="run", position=0,
                                       dynamic_ncols=True, disable=None if progress is None else not progress) as bar:
        for kind, spec, det in tasks:
            bar.set_postfix_str(f"{kind} {getattr(spec, 'sequence', '')} {det or ''}".strip())
            if kind == "pipeline":
                results["runs"].append(_pipeline_task(plan, spec, det, overrides, work, progress))
            elif kind == "baseline":
                results["baselines"].append(_baseline_task(plan, spec, overrides, work, progress))
            else:
                results["capacity"] = _capacity_task(plan, spec, overrides, work, progress)
            bar.update(1)
            log.info("%s", _task_line(kind, results))
    _speed_ratios(results)
    results["suite"]["seconds"] = round(time.time() - started, 1)
    results["suite"]["machine"]["load_average_end"] = _load()
    results["suite"]["errors"] = run_errors(results)
    return results


def _task_line(kind: str, results: dict[str, Any]) -> str:
    r = results["runs"][-1] if kind == "pipeline" else results["baselines"][-1] if kind == "baseline" \
        else results["capacity"]
    if r.get("error"):
        return f"{kind}: ERROR {r['error']}"
    if kind == "capacity":
        return f"capacity: {r['streams']} stream(s) at {r['fps_per_stream']:g} fps"
    what = f"{r['sequence']} / {r.get('detector', 'baseline')}"
    hota = f", HOTA {r['tracking']['HOTA']:.3f}" if r.get("tracking") else ""
    return f"{what}: {r['frames']} frames, {r['fps']:.1f} fps{hota}"


def _load() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (other work on the machine shows here)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# ------------------------------------------------------------------------------------------- outputs


def mlflow_params(results: dict[str, Any]) -> dict[str, Any]:
    """Parameters of a suite run: subset, commit, overrides, every detector variant and each sequence's
    camera thresholds (detection filter, tracker, rules)."""
    s = results["suite"]
    params: dict[str, Any] = {"subset": s["subset"], "manifest": s["manifest"], "git_commit": s["git"]["commit"],
                              "git_dirty": s["git"]["dirty"], "overrides": ";".join(s["overrides"]) or "none",
                              "cpus": s["machine"]["cpus"]}
    used = {r["detector"] for r in results["runs"]} | ({results["capacity"]["detector"]} if results["capacity"]
                                                       else set())
    for det in sorted(used):
        d = results["detectors"][det]
        params |= {f"detector.{det}.backend": d["backend"], f"detector.{det}.model": d["model"],
                   f"detector.{det}.input_size": "x".join(map(str, d["input_size"] or ())) or "model"}
    for b in results["baselines"]:
        params |= {f"baseline.{b['sequence']}.model": b["model"], f"baseline.{b['sequence']}.imgsz": b["imgsz"],
                   f"baseline.{b['sequence']}.tracker": b["tracker"]}
    for run in results["runs"]:
        cam = run.get("camera_settings")
        if cam:
            params |= {f"sequence.{run['sequence']}.{k}": v for k, v in cam.items()}
        params[f"sequence.{run['sequence']}.max_frames"] = run.get("max_frames") or "all"
    return params


def _camera_settings(plan: Plan, seq_id: str, overrides: list[str]) -> dict[str, Any]:
    cam = sequence_setup(plan.manifest.sequence(seq_id), overrides).cameras[0]
    out = {f"detection.{k}": v for k, v in cam.detection.model_dump(mode="json").items()}
    out |= {f"tracker.{k}": v for k, v in cam.tracker.model_dump(mode="json").items()}
    out |= {"fps": cam.fps, "camera": cam.id, "config": portable(plan.manifest.sequence(seq_id).config),
            "rules": json.dumps([r.model_dump(mode="json") for r in cam.rules], separators=(",", ":"))}
    return out


def write_outputs(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """results.json, report.md and the PNG plots in ``out_dir``; returns the files written."""
    from analytics.bench.markdown import markdown
    from analytics.bench.report import write_json, write_plots

    out_dir.mkdir(parents=True, exist_ok=True)
    plots = write_plots(results, out_dir)
    md = out_dir / "report.md"
    md.write_text(markdown(results, [p.name for p in plots]), encoding="utf-8")
    return [write_json(results, out_dir / "results.json"), md, *plots]
