"""Logging a suite run to MLflow: parameters, metrics, and the report files as artifacts.

The tracking URI is ``--mlflow-uri``, else ``$MLFLOW_TRACKING_URI``, else :func:`default_uri`: a local SQLite
store in ``benchmarks/mlruns/`` (git-ignored) with the artifacts beside it. MLflow 3 refuses its old
plain-folder store (``file:``) unless ``MLFLOW_ALLOW_FILE_STORE=true``; the SQLite file is its local
replacement and needs no server. Browse with
``.venv/bin/mlflow ui --backend-store-uri sqlite:///benchmarks/mlruns/mlflow.db``.

Only :class:`mlflow.tracking.MlflowClient` is used (no global state: ``mlflow.set_tracking_uri`` is not
called), and mlflow is imported only when logging.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from analytics.paths import PROJECT_ROOT

EXPERIMENT = "analytics-bench"
#: MLflow limits: parameter values up to 6000 characters, keys up to 250.
_MAX_PARAM = 6000


def default_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else a SQLite store at ``<project>/benchmarks/mlruns/mlflow.db``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{PROJECT_ROOT / 'benchmarks' / 'mlruns' / 'mlflow.db'}"


def _artifact_location(uri: str) -> str | None:
    """For a local SQLite store: an ``artifacts`` folder beside the database; otherwise the server's default."""
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        db.parent.mkdir(parents=True, exist_ok=True)
        return (db.parent / "artifacts").resolve().as_uri()
    return None


def log_run(*, uri: str, params: Mapping[str, Any], metrics: Mapping[str, float], artifacts: list[Path],
            tags: Mapping[str, str] | None = None, run_name: str | None = None,
            experiment: str = EXPERIMENT) -> str:
    """Create one finished MLflow run with ``params``, ``metrics`` and ``artifacts`` (files); returns its id.

    Raises:
        mlflow.exceptions.MlflowException: the store cannot be reached or refuses the run.
    """
    import time

    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(
        experiment, artifact_location=_artifact_location(uri))
    run = client.create_run(exp_id, run_name=run_name, tags=dict(tags or {}))
    run_id = run.info.run_id
    status = "FAILED"
    try:
        now = int(time.time() * 1000)
        params_l = [Param(k, str(v)[:_MAX_PARAM]) for k, v in sorted(params.items())]
        metrics_l = [Metric(k, float(v), now, 0) for k, v in sorted(metrics.items())]
        for i in range(0, max(len(params_l), len(metrics_l)), 100):  # MLflow batches: 100 params, 1000 metrics
            client.log_batch(run_id, metrics=metrics_l[i:i + 100], params=params_l[i:i + 100],
                             tags=[RunTag(k, v) for k, v in (tags or {}).items()] if i == 0 else [])
        for path in artifacts:
            client.log_artifact(run_id, str(path))
        status = "FINISHED"
    finally:
        client.set_terminated(run_id, status=status)
    return run_id
