"""The ``analytics`` command line: run, serve, users, track, replay, baseline, detect, eval-mot, models.

Exit codes: 0 success, 1 the run finished but a camera failed, 2 bad input (config, model, file).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

log = logging.getLogger("analytics")


class UsageError(Exception):
    """Bad input named in the message; the CLI prints it and exits with status 2."""


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(Path.home() / ".cache" / "analytics" / "ultralytics"))


def _build_runner(cfg, *, out_dir: Path | None = None, mot_paths: dict | None = None):
    from analytics.detectors import create_detector
    from analytics.pipeline import Runner
    from analytics.sources import open_source

    classes = tuple(sorted({cid for cam in cfg.cameras for cid in cam.detection.class_ids}))
    conf = min(cam.detection.confidence for cam in cfg.cameras)
    detector = create_detector(cfg.detector, classes=classes, confidence=conf)
    return Runner(cfg, detector, open_source=open_source, out_dir=out_dir, mot_paths=mot_paths)


def _write_report(report, path: Path) -> None:
    """The run summary as JSON: frames, seconds, fps, and each camera's counters and outputs."""
    data = {
        "frames": report.frames, "seconds": report.seconds,
        "fps": report.frames / report.seconds if report.seconds else 0.0,
        "detect_seconds": report.detect_seconds, "track_seconds": report.track_seconds,
        "cameras": [{"camera_id": c.camera_id, "health": c.health.value, "frames": c.frames,
                     "dropped": c.dropped, "reconnects": c.reconnects, "error": c.error,
                     "outputs": {k: str(v) for k, v in c.outputs.items()}} for c in report.cameras],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _run_with_signals(runner, *, progress: bool, report_path: Path) -> int:
    from analytics.pipeline.progress import Progress, summary_line

    def on_signal(signum, _frame):
        log.warning("signal %s: stopping, flushing logs", signal.Signals(signum).name)
        runner.stop()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Progress(runner.snapshot, enabled=progress):
            report = runner.run()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    _write_report(report, report_path)
    for cam in report.cameras:
        log.info("%s", summary_line(cam))
        for kind, path in cam.outputs.items():
            log.info("  %s: %s", kind, path)
    fps = report.frames / report.seconds if report.seconds else 0.0
    log.info("analysed %d frames in %.1f s (%.1f fps)", report.frames, report.seconds, fps)
    return 1 if any(c.error and c.health.value == "failed" for c in report.cameras) else 0


def cmd_run(args: argparse.Namespace) -> int:
    from analytics.config import load_config

    cfg = _with_console_args(load_config(args.config), args)
    if args.out:
        cfg = cfg.model_copy(update={"output": cfg.output.model_copy(update={"dir": str(args.out)})})
    if args.video:
        cfg = cfg.model_copy(update={"output": cfg.output.model_copy(update={"video": True})})
    runner = _build_runner(cfg)
    log.info("running %d camera(s); output in %s", len(cfg.cameras), runner.out_dir)
    side = _attach_alerts(runner, cfg)
    store = side.store if side is not None else None
    console = None
    try:
        if args.serve:
            console = _start_console(cfg, runner.out_dir, store)
        code = _run_with_signals(runner, progress=not args.no_progress,
                                 report_path=runner.out_dir / "run_report.json")
        if console is not None:
            log.info("run finished; the console stays up at %s (Ctrl-C to stop)", console.url)
            _wait_for_interrupt()
        return code
    finally:
        if console is not None:
            console.stop()
        if side is not None:
            side.close()
        if store is not None:
            log.info("alerts: %d open, %d in all, in %s", len(store.list_alerts(open_only=True)),
                     len(store.list_alerts()), store.url)
            store.close()


def _with_console_args(cfg, args: argparse.Namespace):
    """``--host`` / ``--port`` override the config's console settings."""
    update = {k: v for k, v in (("host", getattr(args, "host", None)), ("port", getattr(args, "port", None))) if v}
    return cfg.model_copy(update={"console": cfg.console.model_copy(update=update)}) if update else cfg


def _open_store(cfg, out_dir: Path):
    from analytics.alerts.store import AlertStore, AlertStoreError
    from analytics.console.serve import store_url

    try:
        return AlertStore.open(store_url(cfg, out_dir))
    except AlertStoreError as err:
        raise UsageError(str(err)) from None


def _start_console(cfg, out_dir: Path, store):
    from analytics.console.serve import ConsoleServer, bootstrap_admin, make_context

    if store is None:
        raise UsageError("--serve needs at least one camera with rules (the console shows their alerts)")
    ctx = make_context(cfg, store, out_dir)
    bootstrap_admin(ctx.accounts)
    server = ConsoleServer(ctx, host=cfg.console.host, port=cfg.console.port)
    try:
        server.start()
    except RuntimeError as err:
        raise UsageError(str(err)) from None
    return server


def _wait_for_interrupt() -> None:
    import threading

    done = threading.Event()
    old = {s: signal.signal(s, lambda *_: done.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        done.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def cmd_serve(args: argparse.Namespace) -> int:
    from analytics.config import load_config
    from analytics.console.serve import ConsoleServer, bootstrap_admin, make_context

    cfg = _with_console_args(load_config(args.config), args)
    out_dir = Path(args.out or cfg.output.dir)
    store = _open_store(cfg, out_dir)
    try:
        ctx = make_context(cfg, store, out_dir)
        bootstrap_admin(ctx.accounts)
        ConsoleServer(ctx, host=cfg.console.host, port=cfg.console.port).run()
    finally:
        store.close()
    return 0


def cmd_users_add(args: argparse.Namespace) -> int:
    import getpass

    from analytics.config import load_config
    from analytics.console.accounts import AccountError, Accounts

    cfg = load_config(args.config)
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass(
        f"password for {args.username}: ")
    store = _open_store(cfg, Path(args.out or cfg.output.dir))
    try:
        Accounts(store).create_user(args.username, password, args.role, by=os.environ.get("USER", "cli"))
    except AccountError as err:
        raise UsageError(str(err)) from None
    finally:
        store.close()
    log.info("user %s (%s) created", args.username, args.role)
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from analytics.config import load_config

    cfg = load_config(args.config)
    store = _open_store(cfg, Path(args.out or cfg.output.dir))
    try:
        problems = store.verify_audit_chain()
        count = len(store.audit_entries())
    finally:
        store.close()
    for problem in problems:
        print(problem)
    if problems:
        print(f"audit log of {store.url}: BROKEN ({len(problems)} problem(s) in {count} entries)")
        return 1
    print(f"audit log of {store.url}: intact ({count} entries, hash chain verified)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from analytics.bench.command import main as bench_main

    return bench_main(args.rest)


def cmd_verify(args: argparse.Namespace) -> int:
    from analytics.recording.verify import verify_main

    return verify_main(args.export_dir, args.key)


def cmd_export_key(args: argparse.Namespace) -> int:
    from analytics.config import load_config
    from analytics.pipeline.alert_side import signing_key_path
    from analytics.recording.signing import load_or_create_key, public_key_fingerprint, public_key_pem

    cfg = load_config(args.config)
    path = signing_key_path(cfg, Path(args.out or cfg.output.dir))
    try:
        key = load_or_create_key(path)
    except ValueError as err:
        raise UsageError(str(err)) from None
    sys.stdout.write(public_key_pem(key).decode("ascii"))
    log.info("export signing key %s, fingerprint %s", path, public_key_fingerprint(key))
    return 0


def _attach_alerts(runner, cfg):
    """When a camera has rules or recording is on: the alert store, stage, evidence, live frames, recording and
    retention (see AlertSide)."""
    if not any(cam.rules for cam in cfg.cameras) and not cfg.recording.enabled:
        return None
    from analytics.pipeline.alert_side import AlertSide

    store = _open_store(cfg, runner.out_dir)
    try:
        return AlertSide(runner, cfg, store)
    except Exception:
        store.close()
        raise


def _track_config(args: argparse.Namespace):
    """A one-camera RunConfig for ``analytics track``: camera settings from --config, source from argv."""
    from analytics.config import RunConfig, load_config, parse_config

    base_cam: dict = {}
    detector: dict = {}
    if args.config:
        cfg = load_config(args.config)
        cams = {c.id: c for c in cfg.cameras}
        cam_id = args.camera or next(iter(cams))
        if cam_id not in cams:
            raise UsageError(f"--camera {cam_id!r} is not in {args.config}; cameras: {sorted(cams)}")
        base_cam = cams[cam_id].model_dump(exclude={"source", "id"})
        detector = cfg.detector.model_dump()
    if args.model:
        detector["model"] = args.model
    if args.backend:
        detector["backend"] = args.backend
    if args.imgsz:
        detector["imgsz"] = args.imgsz[0] if len(args.imgsz) == 1 else tuple(args.imgsz)
    detector.setdefault("batch", 4)
    cam = {**base_cam, "id": "track", "source": str(Path(args.source).resolve()) if "://" not in args.source
           else args.source, "fps": None, "benchmark": "://" not in args.source, "realtime": False}
    if args.classes:
        cam["detection"] = {**cam.get("detection", {}), "classes": tuple(args.classes)}
    data = {"detector": detector, "cameras": [cam],
            "output": {"dir": str(Path(args.out).parent), "parquet": args.parquet, "mot": True}}
    cfg: RunConfig = parse_config(data, path=Path(args.config or "<command line>"))
    return cfg


def cmd_track(args: argparse.Namespace) -> int:
    cfg = _track_config(args)
    out = Path(args.out)
    runner = _build_runner(cfg, out_dir=out.parent, mot_paths={"track": out})
    report = Path(args.report) if args.report else out.with_name(out.stem + ".report.json")
    code = _run_with_signals(runner, progress=not args.no_progress, report_path=report)
    log.info("MOTChallenge results: %s", out)
    return code


def _camera_for(cfg_path: Path, camera_id: str | None, log_cameras: list[str]):
    """The camera of a config whose rules a replay applies: --camera, else the log's camera id."""
    from analytics.config import load_config

    cfg = load_config(cfg_path)
    cams = {c.id: c for c in cfg.cameras}
    wanted = camera_id or (log_cameras[0] if len(log_cameras) == 1 else None)
    if wanted is None:
        raise UsageError(f"the track log holds cameras {log_cameras}; choose one with --camera")
    if wanted not in cams:
        raise UsageError(f"camera {wanted!r} is not in {cfg_path} (cameras: {sorted(cams)}); "
                         "pick the camera whose rules to apply with --camera")
    return cams[wanted]


def cmd_replay(args: argparse.Namespace) -> int:
    import time

    import polars as pl

    from analytics.eventlog import EventLogWriter
    from analytics.replay import ReplayError, replay

    if not args.tracklog.is_file():
        raise UsageError(f"track log {args.tracklog} does not exist")
    try:
        log_cameras = pl.scan_parquet(args.tracklog).select(pl.col("camera_id").unique()).collect()["camera_id"]
    except Exception as err:  # noqa: BLE001 - polars raises several types for a file that is not Parquet
        raise UsageError(f"cannot read track log {args.tracklog}: {err}") from None
    camera = _camera_for(args.config, args.camera, sorted(log_cameras.to_list()))
    only = camera.id if camera.id in log_cameras.to_list() else None
    size = tuple(args.frame_size) if args.frame_size else None
    t0 = time.perf_counter()
    try:
        events = replay(args.tracklog, camera, frames=args.frames, frame_size=size, camera_id=only)
    except ReplayError as err:
        raise UsageError(str(err)) from None
    seconds = time.perf_counter() - t0
    out = args.out or args.tracklog.with_name(f"{camera.id}.replay.events.jsonl")
    writer = EventLogWriter(out)
    writer.write(events)
    writer.close()
    closed = sum(e.status == "closed" for e in events)
    log.info("replayed %s with the rules of camera %s in %.2f s: %d event records (%d events closed) -> %s",
             args.tracklog, camera.id, seconds, len(events), closed, out)
    return 0


def cmd_baseline_learn(args: argparse.Namespace) -> int:
    """Learn the abnormal-flow baselines of one camera from track logs and write them where its rules read them."""
    import polars as pl

    from analytics.baseline import learn_from_track_logs

    missing = [str(p) for p in args.tracklogs if not p.is_file()]
    if missing:
        raise UsageError(f"track log(s) not found: {missing}")
    try:
        ids = pl.concat([pl.scan_parquet(p).select("camera_id") for p in args.tracklogs]).unique().collect()
    except Exception as err:  # noqa: BLE001 - polars raises several types for a file that is not Parquet
        raise UsageError(f"cannot read the track logs: {err}") from None
    camera = _camera_for(args.config, args.camera, sorted(ids["camera_id"].to_list()))
    flows = [r for r in camera.rules if r.kind == "abnormal_flow" and (args.rule is None or r.id == args.rule)]
    if not flows:
        raise UsageError(f"camera {camera.id!r} of {args.config} has no abnormal_flow rule"
                         + (f" with id {args.rule!r}" if args.rule else ""))
    if args.out and len(flows) > 1:
        raise UsageError("--out names one file: choose the rule with --rule")
    size = tuple(args.frame_size) if args.frame_size else None
    only = camera.id if camera.id in ids["camera_id"].to_list() else None
    try:
        learned = learn_from_track_logs(args.tracklogs, camera, args.rule, frame_size=size, camera_id=only)
    except ValueError as err:
        raise UsageError(str(err)) from None
    for rule in flows:
        out = args.out or (Path(rule.baseline) if rule.baseline else None)
        if out is None:
            raise UsageError(f"rule {rule.id!r} names no baseline file; set its 'baseline' or give --out")
        learned[rule.id].save(out)
        log.info("baseline of %s/%s from %d track log(s) -> %s", camera.id, rule.id, len(args.tracklogs), out)
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    import cv2

    from analytics.config import DetectorConfig
    from analytics.detectors import create_detector
    from analytics.types import CLASS_NAMES, class_ids_from_names

    image = cv2.imread(str(args.image))
    if image is None:
        raise UsageError(f"cannot read image {args.image}: missing or not an image file")
    cfg = DetectorConfig(**{k: v for k, v in {"model": args.model, "backend": args.backend}.items() if v})
    classes = class_ids_from_names(args.classes) if args.classes else tuple(CLASS_NAMES)
    detector = create_detector(cfg, classes=classes, confidence=args.conf)
    try:
        dets = detector.detect([image])[0]
    finally:
        detector.close()
    rows = [{"class": CLASS_NAMES.get(int(c), str(c)), "confidence": round(float(s), 3),
             "xyxy": [round(float(v), 1) for v in box]}
            for box, s, c in zip(dets.xyxy, dets.confidence, dets.class_id, strict=True)]
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(f"{r['class']:<11} {r['confidence']:.2f}  " + " ".join(f"{v:7.1f}" for v in r["xyxy"]))
    return 0


def cmd_eval_mot(args: argparse.Namespace) -> int:
    from analytics.evaluation import evaluate_mot

    for p in (args.result, args.gt):
        if not Path(p).is_file():
            raise UsageError(f"MOT file {p} does not exist")
    metrics = evaluate_mot(args.result, args.gt, drop_zero_flag=not args.keep_zero_flag)
    if args.json:
        print(json.dumps(metrics, indent=2, default=float))
    else:
        for key in ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN"):
            if key in metrics:
                value = metrics[key]
                print(f"{key:<5} {value:.3f}" if key in ("HOTA", "DetA", "AssA", "MOTA", "IDF1")
                      else f"{key:<5} {int(value)}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from analytics.models import list_models, resolve_model

    for entry in list_models():
        try:
            resolved = resolve_model(entry.name)
            print(f"{entry.name:<26} ok       {resolved.path}")
        except Exception as err:  # noqa: BLE001 - report every model, then fail
            print(f"{entry.name:<26} MISSING  {str(err).splitlines()[0]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="analytics", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run every camera of a YAML config")
    r.add_argument("config", type=Path)
    r.add_argument("--out", type=Path, help="output folder (overrides output.dir)")
    r.add_argument("--video", action="store_true", help="also write annotated videos")
    r.add_argument("--no-progress", action="store_true", help="no live table")
    r.add_argument("--serve", action="store_true", help="also serve the operator console (stays up after the run)")
    r.add_argument("--host", help="console address (overrides console.host)")
    r.add_argument("--port", type=int, help="console port (overrides console.port)")
    r.set_defaults(func=cmd_run)

    sv = sub.add_parser("serve", help="serve the operator console over a run's alert store and live frames")
    sv.add_argument("config", type=Path)
    sv.add_argument("--out", type=Path, help="the run's output folder (default: output.dir)")
    sv.add_argument("--host", help="address (overrides console.host)")
    sv.add_argument("--port", type=int, help="port (overrides console.port)")
    sv.set_defaults(func=cmd_serve)

    us = sub.add_parser("users", help="console accounts")
    us_sub = us.add_subparsers(dest="users_command", required=True)
    ua = us_sub.add_parser("add", help="create a console user (password asked, or read from stdin)")
    ua.add_argument("username")
    ua.add_argument("--role", choices=["police", "operator", "supervisor", "admin"], required=True)
    ua.add_argument("--config", type=Path, required=True, help="run config (its alert store holds the users)")
    ua.add_argument("--out", type=Path, help="the run's output folder (default: output.dir)")
    ua.add_argument("--password-stdin", action="store_true", help="read the password from the first stdin line")
    ua.set_defaults(func=cmd_users_add)

    bn = sub.add_parser("bench", add_help=False, help="the benchmark suite (same as benchmarks/suite.py; "
                                                      "'analytics bench --help' for its options)")
    bn.add_argument("rest", nargs=argparse.REMAINDER)
    bn.set_defaults(func=cmd_bench)

    vf = sub.add_parser("verify", help="check a requisition export's signature and file hashes; exit 1 naming "
                                       "any altered, missing or added file")
    vf.add_argument("export_dir", type=Path)
    vf.add_argument("--key", type=Path, help="the centre's export public key (PEM, raw, base64 or hex; see "
                                             "'analytics export-key'); without it the key in the manifest is used "
                                             "and its fingerprint printed")
    vf.set_defaults(func=cmd_verify)

    ek = sub.add_parser("export-key", help="print the public key that signs requisition exports (PEM), to give "
                                           "to the authorities who verify them")
    ek.add_argument("config", type=Path)
    ek.add_argument("--out", type=Path, help="the run's output folder (default: output.dir)")
    ek.set_defaults(func=cmd_export_key)

    au = sub.add_parser("audit", help="the audit log")
    au_sub = au.add_subparsers(dest="audit_command", required=True)
    av = au_sub.add_parser("verify", help="check the audit log's hash chain; exit 1 naming any edited or removed "
                                          "entry")
    av.add_argument("config", type=Path)
    av.add_argument("--out", type=Path, help="the run's output folder (default: output.dir)")
    av.set_defaults(func=cmd_audit_verify)

    t = sub.add_parser("track", help="track one video, image folder or stream; write MOTChallenge text")
    t.add_argument("source")
    t.add_argument("--out", required=True, help="MOTChallenge result file to write")
    t.add_argument("--model", help="registry name or path of the detector model")
    t.add_argument("--backend", choices=["openvino", "onnxruntime", "ultralytics"])
    t.add_argument("--imgsz", type=int, nargs="+", help="network input size (h w, or one side)")
    t.add_argument("--classes", nargs="+", help="class names to track (default: the camera's)")
    t.add_argument("--config", type=Path, help="take detector and camera settings from this run config")
    t.add_argument("--camera", help="which camera of --config (default: the first)")
    t.add_argument("--parquet", action="store_true", help="also write the Parquet track log beside --out")
    t.add_argument("--report", type=Path, help="run summary JSON (default: beside --out)")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=cmd_track)

    rp = sub.add_parser("replay", help="re-run a camera's rules on a stored track log (no detection)")
    rp.add_argument("tracklog", type=Path, help="<camera>.tracks.parquet from a run")
    rp.add_argument("--config", type=Path, required=True, help="run config with the camera's scene and rules")
    rp.add_argument("--camera", help="camera of --config whose rules to apply (default: the log's camera)")
    rp.add_argument("--out", type=Path, help="events JSON lines to write (default: beside the track log)")
    rp.add_argument("--frames", type=Path, help="frame index (default: <camera>.frames.parquet beside the log)")
    rp.add_argument("--frame-size", type=int, nargs=2, metavar=("W", "H"),
                    help="frame size in pixels, for a log without a frame index")
    rp.set_defaults(func=cmd_replay)

    bl = sub.add_parser("baseline", help="abnormal-flow baselines")
    bl_sub = bl.add_subparsers(dest="baseline_command", required=True)
    learn = bl_sub.add_parser("learn", help="learn a camera's flow baselines from track logs")
    learn.add_argument("tracklogs", type=Path, nargs="+", help="<camera>.tracks.parquet files of past runs")
    learn.add_argument("--config", type=Path, required=True, help="run config with the camera's abnormal_flow rules")
    learn.add_argument("--camera", help="camera of --config (default: the logs' camera)")
    learn.add_argument("--rule", help="only this abnormal_flow rule (default: all of the camera's)")
    learn.add_argument("--out", type=Path, help="baseline file (default: the rule's 'baseline' path)")
    learn.add_argument("--frame-size", type=int, nargs=2, metavar=("W", "H"),
                       help="frame size in pixels, for logs without a frame index")
    learn.set_defaults(func=cmd_baseline_learn)

    d = sub.add_parser("detect", help="print the detections in one image")
    d.add_argument("image", type=Path)
    d.add_argument("--model")
    d.add_argument("--backend", choices=["openvino", "onnxruntime", "ultralytics"])
    d.add_argument("--conf", type=float, default=0.25)
    d.add_argument("--classes", nargs="+")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_detect)

    e = sub.add_parser("eval-mot", help="score a MOTChallenge result against ground truth (HOTA, MOTA, IDF1)")
    e.add_argument("result", type=Path)
    e.add_argument("--gt", type=Path, required=True)
    e.add_argument("--keep-zero-flag", action="store_true",
                   help="keep ground-truth rows whose 7th column is 0 (MOT15 convention drops them)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eval_mot)

    m = sub.add_parser("models", help="list the model registry and verify checksums")
    m.set_defaults(func=cmd_models)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # its own parser (argparse's REMAINDER cannot pass on an option like --help)
        _setup_logging(False)
        from analytics.bench.command import main as bench_main

        return int(bench_main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    from analytics.config import ConfigError

    from analytics.models import ModelError
    from analytics.sources.base import SourceError

    try:
        return int(args.func(args) or 0)
    except (ConfigError, ModelError, SourceError, UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
