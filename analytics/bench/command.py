"""The benchmark suite's command line (``benchmarks/suite.py``; the function to call is :func:`main`).

    .venv/bin/python benchmarks/suite.py [--manifest benchmarks/manifest.yaml] [--subset ci|full]
        [--backends openvino onnxruntime ultralytics] [--imgsz 640 448x576] [--sequences ID...]
        [--set [SEQUENCE:]KEY=VALUE]... [--check [--reference benchmarks/reference.yaml]]
        [--mlflow-uri URI | --no-mlflow] [--out DIR] [--work DIR] [--skip-capacity] [--no-progress]
        [--from-results RESULTS.json] [--write-reference FILE]

Exit status: 0 done (check passed, when asked); 1 a run failed or the check failed; 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from analytics.paths import PROJECT_ROOT

log = logging.getLogger("analytics.bench")


def build_parser() -> argparse.ArgumentParser:
    from analytics.bench.suite import DEFAULT_MANIFEST, DEFAULT_REFERENCE

    p = argparse.ArgumentParser(prog="benchmarks/suite.py", description="Run the benchmark suite: perception, "
                                "speed, baseline, events, capacity; write JSON, markdown and plots; log to MLflow; "
                                "check against reference numbers.")
    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST, help="the manifest (default: %(default)s)")
    p.add_argument("--subset", default="full", help="subset of the manifest to run (default: full; ci for CI)")
    p.add_argument("--backends", nargs="+", choices=["openvino", "onnxruntime", "ultralytics"],
                   help="only detector variants of these backends")
    p.add_argument("--imgsz", nargs="+", help="only detector variants of these input sizes (640, 448x576)")
    p.add_argument("--sequences", nargs="+", help="only these sequences' runs")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="[SEQ:]KEY=VALUE",
                   help="override a camera setting (e.g. detection.confidence=0.9, pets09:tracker.min_hits=5)")
    p.add_argument("--skip-capacity", action="store_true", help="leave out the capacity search")
    p.add_argument("--check", action="store_true", help="check accuracy metrics against --reference")
    p.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="reference numbers (default: "
                   "%(default)s)")
    p.add_argument("--mlflow-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else a SQLite "
                   "store in benchmarks/mlruns/)")
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    p.add_argument("--experiment", default="analytics-bench", help="MLflow experiment (default: %(default)s)")
    p.add_argument("--out", type=Path, help="report folder (default: benchmarks/results/suite/<subset>)")
    p.add_argument("--work", type=Path, help="work files: track logs, events, alert stores (default: "
                   ".cache/bench/<subset>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--from-results", type=Path, help="run nothing: report, log and check this results.json")
    p.add_argument("--write-reference", type=Path, help="write the measured accuracy metrics as reference "
                   "numbers (default tolerances) to this file")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _plan(args: argparse.Namespace):
    from analytics.bench.manifest import ManifestError, Plan, load_manifest

    manifest = load_manifest(args.manifest)
    plan = manifest.plan(args.subset, backends=tuple(args.backends or ()), imgsz=tuple(args.imgsz or ()))
    runs = plan.runs
    if args.sequences:
        unknown = sorted(set(args.sequences) - {r.sequence for r in plan.runs})
        if unknown:
            raise ManifestError(f"--sequences {unknown}: not among the runs of subset {args.subset!r} "
                                f"({sorted({r.sequence for r in plan.runs})})")
        runs = tuple(r for r in runs if r.sequence in args.sequences)
    return Plan(manifest, plan.subset, runs, None if args.skip_capacity else plan.capacity)


def _check(results: dict[str, Any], reference_path: Path, reference) -> str:
    from analytics.bench.regression import check, format_check

    outcomes = check(results["metrics"], reference)
    results["check"] = {"reference": str(reference_path), "reference_subset": reference.subset,
                        "passed": not any(o.failed for o in outcomes),
                        "outcomes": [{"metric": o.metric, "reference": o.reference, "measured": o.measured,
                                      "tolerance": o.tolerance, "status": o.status} for o in outcomes]}
    text = format_check(outcomes, source=str(reference_path))
    if reference.subset and reference.subset != results["suite"]["subset"]:
        text += (f"\nnote: the reference numbers are for subset {reference.subset!r}, this run is "
                 f"{results['suite']['subset']!r}")
    return text


def _mlflow(results: dict[str, Any], files: list[Path], args: argparse.Namespace) -> None:
    from analytics.bench.suite import mlflow_params
    from analytics.bench.tracking import default_uri, log_run

    uri = args.mlflow_uri or default_uri()
    s = results["suite"]
    tags = {"subset": s["subset"], "git_commit": s["git"]["commit"]}
    if results.get("check"):
        tags["check"] = "passed" if results["check"]["passed"] else "failed"
    run_id = log_run(uri=uri, params=mlflow_params(results), metrics=results["metrics"], artifacts=files,
                     tags=tags, run_name=f"{s['subset']} {s['date']} {s['git']['commit'][:8]}",
                     experiment=args.experiment)
    results["mlflow"] = {"uri": uri, "experiment": args.experiment, "run_id": run_id}
    log.info("MLflow: run %s in experiment %r at %s", run_id, args.experiment, uri)


def _execute(args: argparse.Namespace) -> int:
    from analytics.bench.regression import load_reference, reference_from_metrics
    from analytics.bench.report import flat_metrics, run_errors, write_json
    from analytics.bench.suite import run_suite, write_outputs

    reference = load_reference(args.reference) if args.check else None  # a bad file fails before any run
    progress = False if args.no_progress else None
    if args.from_results:
        try:
            results = json.loads(args.from_results.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            from analytics.bench.suite import SuiteError

            raise SuiteError(f"cannot read results {args.from_results}: {err}") from None
        results.pop("check", None)
        out = args.out or args.from_results.parent
    else:
        plan = _plan(args)
        out = args.out or PROJECT_ROOT / "benchmarks" / "results" / "suite" / plan.subset
        work = args.work or PROJECT_ROOT / ".cache" / "bench" / plan.subset
        command = "benchmarks/suite.py " + " ".join(sys.argv[1:] if sys.argv[0].endswith("suite.py") else [])
        results = run_suite(plan, work=work, overrides=args.overrides, progress=progress, command=command.strip(),
                            manifest_path=_shown(args.manifest))
    results["metrics"] = flat_metrics(results)
    check_text = _check(results, args.reference, reference) if reference is not None else None
    files = write_outputs(results, out)
    if not args.no_mlflow:
        _mlflow(results, files, args)
        write_json(results, out / "results.json")
    if args.write_reference:
        import yaml

        doc = reference_from_metrics(results["metrics"], subset=results["suite"]["subset"])
        args.write_reference.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        log.info("reference numbers written to %s (%d metrics)", args.write_reference, len(doc["metrics"]))
    log.info("report: %s", out / "report.md")
    errors = run_errors(results)
    for err in errors:
        log.error("%s", err)
    if check_text is not None:
        print(check_text, file=sys.stderr if not results["check"]["passed"] else sys.stdout)
    return 1 if errors or (results.get("check") and not results["check"]["passed"]) else 0


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    """Run the suite with command-line arguments ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # MLflow's own handler: database set-up chatter
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from analytics.bench.manifest import ManifestError
    from analytics.bench.regression import ReferenceFileError
    from analytics.bench.suite import SuiteError
    from analytics.config import ConfigError

    try:
        return _execute(args)
    except (ManifestError, ReferenceFileError, SuiteError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
