"""Log a threshold sweep to MLflow: one parent run for the sweep, one child run per setting.

The parent run holds what the sweep was run on (config, camera, track log, targets, criterion) as parameters,
the chosen settings as a ``chosen.json`` artifact and any files given (the tuned config, the sweep table,
charts). Each child run (``<rule>: <setting>``) holds the rule, the swept fields as parameters and the
scores (precision, recall, F1, tp / fp / fn per source, events, events per hour) as metrics, with tags
``rule_id``, ``original`` and ``chosen``, so the MLflow UI can sort and compare settings.

The tracking URI is the caller's: the notebooks default to an SQLite file under their output folder
(``sqlite:///.../mlflow.db``); MLflow 3 refuses its plain-file store unless ``MLFLOW_ALLOW_FILE_STORE`` is set.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

_METRICS = ("precision", "recall", "f1", "tp", "fp", "fn", "events", "events_per_hour", "ignored", "unjudged")


def _metrics(row: Mapping[str, Any]) -> dict[str, float]:
    names = [*_METRICS, *(k for k in row if k.endswith(("_tp", "_fp", "_fn")))]
    out = {}
    for name in names:
        value = row.get(name)
        if isinstance(value, int | float) and math.isfinite(float(value)):
            out[name] = float(value)
    return out


def log_sweep(sweep: pl.DataFrame, chosen: pl.DataFrame, *, tracking_uri: str, experiment: str,
              run_name: str, params: Mapping[str, Any], artifacts: Sequence[str | Path] = (),
              artifact_dir: str | Path | None = None) -> str:
    """Log the sweep (:func:`analytics.analysis.sweep.run_sweep`) and the choice; returns the parent run id.

    ``artifact_dir``: where a NEW experiment keeps its artifacts (default: MLflow's, ``./mlruns`` beside the
    working directory); an existing experiment keeps its own.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    if artifact_dir is not None and mlflow.MlflowClient().get_experiment_by_name(experiment) is None:
        mlflow.MlflowClient().create_experiment(experiment, artifact_location=Path(artifact_dir).resolve().as_uri())
    mlflow.set_experiment(experiment)
    picked = set(zip(chosen["rule_id"].to_list(), chosen["setting"].to_list(), strict=True))
    with mlflow.start_run(run_name=run_name) as parent:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_dict({r["rule_id"]: {"setting": r["setting"], "values": json.loads(r["values"]),
                                        "reason": r.get("reason")} for r in chosen.iter_rows(named=True)},
                        "chosen.json")
        client = mlflow.MlflowClient()
        for row in sweep.iter_rows(named=True):
            _log_child(client, parent.info, row, chosen=(row["rule_id"], row["setting"]) in picked)
        for path in artifacts:
            mlflow.log_artifact(str(path))
        return parent.info.run_id


def _log_child(client: Any, parent: Any, row: Mapping[str, Any], *, chosen: bool) -> None:
    """One finished child run for one setting, in three calls (create, one batch, terminate)."""
    from mlflow.entities import Metric, Param

    tags = {"mlflow.parentRunId": parent.run_id, "rule_id": row["rule_id"], "kind": row["kind"],
            "original": str(row["original"]), "chosen": str(chosen)}
    run = client.create_run(parent.experiment_id, run_name=f"{row['rule_id']}: {row['setting']}", tags=tags)
    params = {"rule_id": row["rule_id"], **json.loads(row["values"])}
    client.log_batch(run.info.run_id, metrics=[Metric(k, v, 0, 0) for k, v in _metrics(row).items()],
                     params=[Param(k, str(v)) for k, v in params.items()], tags=[])
    client.set_terminated(run.info.run_id)


def sweep_runs(tracking_uri: str, experiment: str, parent_run_id: str) -> pl.DataFrame:
    """The child runs of a logged sweep (run name, rule, F1...), read back from MLflow."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    runs = mlflow.search_runs(experiment_names=[experiment], output_format="list",
                              filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'")
    return pl.DataFrame([{"run": r.info.run_name, "rule_id": r.data.tags.get("rule_id"),
                          "chosen": r.data.tags.get("chosen"), **r.data.metrics} for r in runs])
