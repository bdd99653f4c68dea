"""What a rule's events are scored against when its thresholds are tuned: three sources, each optional.

* **reference**: the camera's rules, as configured, replayed on ground-truth tracks (MOTChallenge ``gt.txt``
  turned into a track log by :func:`analytics.evaluation.mot_to_track_log`), as ``benchmarks/rules_pets09.py``
  does: the events the rules would give with perfect perception. Predicted and reference events are paired
  by :func:`analytics.event_eval.match_events` (same kind and place, time IoU, members mapped by box
  overlap). Ground-truth rows flagged 0 (MOT "ignore": people the annotators left out) are not in the
  reference, so an event made mostly of people whose boxes match such rows (at least ``min_share`` of its
  members' rows within its time span) is neither a true nor a false positive: it is counted as *ignored*.
* **labels**: labelled event files (:mod:`analytics.labels`), matched by :func:`analytics.labels.match_labels`;
  only labels of the rule's kind whose zone / line (when named) is the rule's count for that rule.
* **verdicts**: alerts reviewed by operators and supervisors in an alert store. An alert closed as
  ``true_alert`` is a positive, one closed as ``false_alarm`` a known negative; duplicates and open alerts
  are left out. Events are paired one to one with the reviewed alerts of the same rule (same kind and place,
  times overlapping within ``slack``): an event paired with a true alert is a true positive, with a false
  alarm a false positive; a true alert left unpaired is a false negative. An event no reviewed alert covers
  is *unjudged*: nobody said whether it was right, so it counts neither way (its volume still shows).

The counts of the sources are added (micro-average) into one precision / recall / F1 per setting.
"""

from __future__ import annotations

import configparser
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from analytics.event_eval import MatchCounts, final_events, match_events, track_id_mapping
from analytics.labels import EventLabel, EventLabels, match_labels
from analytics.rules.base import Event

SOURCES: tuple[str, ...] = ("reference", "labels", "verdicts")
#: Verdicts that score (duplicates are neither right nor wrong detections, only redundant ones).
JUDGED = ("true_alert", "false_alarm")
VERDICT_SCHEMA: dict[str, Any] = {"alert_id": pl.String, "camera_id": pl.String, "rule_id": pl.String,
                                  "kind": pl.String, "zone_id": pl.String, "line_id": pl.String,
                                  "start": pl.Float64, "end": pl.Float64, "verdict": pl.String}


class SequenceInfo(NamedTuple):
    """A MOTChallenge sequence folder's ``seqinfo.ini``: frames per second, (width, height) pixels, images."""

    name: str
    fps: float
    frame_size: tuple[int, int]
    images: Path


def sequence_info(path: str | Path) -> SequenceInfo:
    """Read ``seqinfo.ini`` of a sequence folder, or of the sequence above a ``gt/gt.txt`` path.

    Raises:
        FileNotFoundError: no ``seqinfo.ini`` there. ValueError: one without frameRate, imWidth, imHeight.
    """
    path = Path(path)
    folder = path.parent.parent if path.is_file() else path
    ini = folder / "seqinfo.ini"
    if not ini.is_file():
        raise FileNotFoundError(f"no seqinfo.ini in {folder} (expected a MOTChallenge sequence folder)")
    parser = configparser.ConfigParser()
    parser.read(ini, encoding="utf-8")
    try:
        seq = parser["Sequence"]
        return SequenceInfo(seq.get("name", folder.name), float(seq["frameRate"]),
                            (int(seq["imWidth"]), int(seq["imHeight"])), folder / seq.get("imDir", "img1"))
    except (KeyError, ValueError) as err:
        raise ValueError(f"{ini}: expected a [Sequence] section with frameRate, imWidth, imHeight ({err})") from None


# -- ground truth ---------------------------------------------------------------------------------------------

def gt_track_logs(mot: pl.DataFrame, *, camera_id: str, fps: float,
                  seq_range: tuple[int, int] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Ground-truth rows as two track logs: the kept rows, and the rows flagged 0 (ignored).

    Args:
        mot: MOTChallenge rows (:func:`analytics.evaluation.read_mot`), 1-based frames.
        camera_id: written in both logs.
        fps: the sequence's frame rate (seq = frame - 1, timestamp = seq / fps).
        seq_range: keep frames whose 0-based seq is in ``[first, last]`` (the span of the log being tuned).

    Returns:
        (kept, ignored), each with :data:`analytics.tracklog.TRACK_SCHEMA` (ignored rows get confidence 1).
    """
    from analytics.evaluation import mot_to_track_log

    if seq_range is not None:
        mot = mot.filter(pl.col("frame").is_between(seq_range[0] + 1, seq_range[1] + 1))
    kept = mot_to_track_log(mot.filter(pl.col("conf") != 0), camera_id=camera_id, fps=fps)
    ignored = mot_to_track_log(mot.filter(pl.col("conf") == 0).with_columns(pl.lit(1.0).alias("conf")),
                               camera_id=camera_id, fps=fps)
    return kept, ignored


def ignored_rows(pred: pl.DataFrame, kept: pl.DataFrame, ignored: pl.DataFrame, *,
                 iou_threshold: float = 0.5) -> pl.DataFrame:
    """Which predicted rows show a person the ground truth ignores.

    A predicted box is *ignored* when its best IoU with an ignored ground-truth box of the same ``seq`` is at
    least ``iou_threshold`` and above its best IoU with a kept box.

    Returns:
        ``seq`` (Int64), ``timestamp`` (Float64, seconds), ``track_id`` (Int64), ``ignored`` (Boolean), one row
        per predicted row, sorted by seq.
    """
    from analytics.tracking.matching import iou_matrix

    pred = pred.sort("seq")
    seq = pred["seq"].to_numpy()
    boxes = pred.select("x1", "y1", "x2", "y2").to_numpy().astype(np.float64)
    flags = np.zeros(len(pred), dtype=bool)
    by_seq = {s: g.select("x1", "y1", "x2", "y2").to_numpy().astype(np.float64)
              for (s,), g in ignored.group_by("seq")}
    kept_by = {s: g.select("x1", "y1", "x2", "y2").to_numpy().astype(np.float64)
               for (s,), g in kept.filter(pl.col("seq").is_in(list(by_seq))).group_by("seq")}
    for s, ign in by_seq.items():
        lo, hi = np.searchsorted(seq, s, "left"), np.searchsorted(seq, s, "right")
        if hi == lo:
            continue
        best_ign = iou_matrix(boxes[lo:hi], ign).max(axis=1)
        k = kept_by.get(s)
        best_kept = iou_matrix(boxes[lo:hi], k).max(axis=1) if k is not None and len(k) else np.zeros(hi - lo)
        flags[lo:hi] = (best_ign >= iou_threshold) & (best_ign > best_kept)
    return pred.select(pl.col("seq").cast(pl.Int64), pl.col("timestamp").cast(pl.Float64),
                       pl.col("track_id").cast(pl.Int64)).with_columns(pl.Series("ignored", flags))


@dataclass(frozen=True)
class Reference:
    """Reference events from ground truth, and what is needed to compare a predicted log's events with them.

    Attributes:
        events: the reference records (any statuses), from the camera's rules as configured.
        id_map: predicted track id -> ground-truth id (:func:`analytics.event_eval.track_id_mapping`).
        rows: :func:`ignored_rows` of the predicted log (empty: nothing is ignored).
        min_share: share of an event's member rows that must be ignored for the event to be ignored.
    """

    events: tuple[Event, ...]
    id_map: dict[int, int] = field(default_factory=dict)
    rows: pl.DataFrame = field(default_factory=pl.DataFrame)
    min_share: float = 0.5

    def is_ignored(self, event: Event) -> bool:
        """Whether ``event`` (a final record) is made mostly of people the ground truth ignores."""
        if self.rows.is_empty() or not event.member_ids:
            return False
        mine = self.rows.filter(pl.col("track_id").is_in(list(event.member_ids))
                                & pl.col("timestamp").is_between(event.start - 1e-6, event.end + 1e-6))
        return len(mine) > 0 and float(mine["ignored"].mean()) >= self.min_share


def build_reference(camera: Any, pred_log: pl.DataFrame, mot: pl.DataFrame, *, fps: float,
                    frame_size: tuple[int, int], work_dir: str | Path) -> Reference:
    """Replay the ground truth over the predicted log's frame span through ``camera``'s rules.

    Args:
        camera: the :class:`~analytics.config.CameraConfig` as configured (its rules define the reference).
        pred_log: the track log being tuned (TRACK_SCHEMA; its ``seq`` is the 0-based source frame index).
        mot: ground-truth rows (1-based frames).
        fps, frame_size: the sequence's frame rate and (width, height) in pixels.
        work_dir: where the ground-truth track log is written (``<camera>.gt.tracks.parquet``).
    """
    from analytics.replay import replay

    span = (int(pred_log["seq"].min()), int(pred_log["seq"].max())) if len(pred_log) else None
    kept, ignored = gt_track_logs(mot, camera_id=camera.id, fps=fps, seq_range=span)
    path = Path(work_dir) / f"{camera.id}.gt.tracks.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    kept.write_parquet(path)
    events = tuple(replay(path, camera, frame_size=frame_size))
    return Reference(events, track_id_mapping(pred_log, kept), ignored_rows(pred_log, kept, ignored))


# -- verdicts -------------------------------------------------------------------------------------------------

def load_verdicts(store_url: str, *, camera_id: str | None = None) -> pl.DataFrame:
    """Reviewed alerts of an alert store (:data:`VERDICT_SCHEMA`: ids, kind, place, start / end in the frames'
    time base, and the verdict: the latest, a supervisor's review included); open alerts are left out."""
    from analytics.alerts.store import AlertStore

    with AlertStore.open(store_url) as store:
        alerts = store.list_alerts(camera_id=camera_id)
    rows = [{"alert_id": a.id, "camera_id": a.camera_id, "rule_id": a.rule_id, "kind": a.kind,
             "zone_id": a.zone_id, "line_id": a.line_id, "start": float(a.start), "end": float(a.end),
             "verdict": a.verdict} for a in alerts if a.verdict is not None]
    return pl.DataFrame(rows, schema=VERDICT_SCHEMA, orient="row")


# -- scoring --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Score:
    """One setting's events scored against each source present (see the module docstring)."""

    counts: dict[str, MatchCounts]
    events: int
    ignored: int = 0
    unjudged: int = 0

    @property
    def total(self) -> MatchCounts:
        """The sources' counts added up."""
        return MatchCounts(tp=sum(c.tp for c in self.counts.values()), fp=sum(c.fp for c in self.counts.values()),
                           fn=sum(c.fn for c in self.counts.values()))

    def row(self) -> dict[str, Any]:
        """Flat columns: tp, fp, fn, precision, recall, f1, events, ignored, unjudged, then
        ``<source>_tp/_fp/_fn`` per source."""
        total = self.total
        out: dict[str, Any] = {**total.to_dict(), "events": self.events, "ignored": self.ignored,
                               "unjudged": self.unjudged}
        for name, c in self.counts.items():
            out |= {f"{name}_tp": c.tp, f"{name}_fp": c.fp, f"{name}_fn": c.fn}
        return out


@dataclass(frozen=True)
class Targets:
    """The sources to score against; any may be absent (then it does not count).

    Attributes:
        reference: :func:`build_reference`'s result, or None.
        labels: labelled event files (:func:`analytics.labels.load_labels`).
        verdicts: :func:`load_verdicts`'s frame, or None.
        verdict_slack: seconds of tolerance on the reviewed alerts' start and end.
        match_options: keyword arguments of :func:`analytics.event_eval.match_events` (tolerances).
    """

    reference: Reference | None = None
    labels: tuple[EventLabels, ...] = ()
    verdicts: pl.DataFrame | None = None
    verdict_slack: float = 2.0
    match_options: dict[str, float] = field(default_factory=dict)

    @property
    def sources(self) -> tuple[str, ...]:
        """The sources present, in :data:`SOURCES` order."""
        present = {"reference": self.reference is not None, "labels": bool(self.labels),
                   "verdicts": self.verdicts is not None and not self.verdicts.is_empty()}
        return tuple(s for s in SOURCES if present[s])

    def score(self, events: Sequence[Event], rule: Any) -> Score:
        """Score the records of ONE rule's events (any statuses) against every source present."""
        mine = [e for e in final_events(events) if e.rule_id == rule.id]
        counts: dict[str, MatchCounts] = {}
        ignored = unjudged = 0
        if self.reference is not None:
            counts["reference"], ignored = self._against_reference(self.reference, mine, rule)
        if self.labels:
            counts["labels"] = self._against_labels(mine, rule)
        if self.verdicts is not None and not self.verdicts.is_empty():
            counts["verdicts"], unjudged = self._against_verdicts(self.verdicts, mine, rule)
        return Score(counts, events=len(mine), ignored=ignored, unjudged=unjudged)

    def _against_reference(self, ref: Reference, events: list[Event], rule: Any) -> tuple[MatchCounts, int]:
        scored = [e for e in events if not ref.is_ignored(e)]
        wanted = [e for e in final_events(ref.events) if e.rule_id == rule.id]
        m = match_events(scored, wanted, id_map=ref.id_map, **self.match_options)
        return MatchCounts(m.tp, m.fp, m.fn), len(events) - len(scored)

    def _against_labels(self, events: list[Event], rule: Any) -> MatchCounts:
        tp = fp = fn = 0
        for file in self.labels:
            wanted = tuple(lab for lab in file.labels if _label_fits_rule(lab, rule))
            m = match_labels(events, file.model_copy(update={"labels": wanted}))
            tp, fp, fn = tp + m.tp, fp + m.fp, fn + m.fn
        return MatchCounts(tp, fp, fn)

    def _against_verdicts(self, verdicts: pl.DataFrame, events: list[Event], rule: Any) -> tuple[MatchCounts, int]:
        rows = verdicts.filter((pl.col("rule_id") == rule.id) & pl.col("verdict").is_in(list(JUDGED)))
        labels = EventLabels(slack=self.verdict_slack,
                             labels=tuple(_verdict_label(r) for r in rows.iter_rows(named=True)))
        m = match_labels(events, labels)
        verdict = [lab.note for lab in labels.labels]
        tp = sum(1 for _e, j in m.pairs if verdict[j] == "true_alert")
        fp = len(m.pairs) - tp
        fn = sum(1 for j in m.unmatched_labels if verdict[j] == "true_alert")
        return MatchCounts(tp, fp, fn), len(m.unmatched_events)


def _label_fits_rule(label: EventLabel, rule: Any) -> bool:
    if label.kind != rule.kind:
        return False
    if label.zone is not None and label.zone != getattr(rule, "zone", None):
        return False
    return label.line is None or label.line == getattr(rule, "line", None)


def _verdict_label(row: dict[str, Any]) -> EventLabel:
    """A reviewed alert as a label whose note is its verdict (place: the alert's zone or line)."""
    return EventLabel(kind=row["kind"], start=max(row["start"], 0.0), end=max(row["end"], row["start"], 0.0),
                      zone=row["zone_id"], line=row["line_id"], note=row["verdict"])


def load_label_files(paths: Iterable[str | Path]) -> tuple[EventLabels, ...]:
    """Every labelled event file of ``paths`` (:func:`analytics.labels.load_labels`)."""
    from analytics.labels import load_labels

    return tuple(load_labels(p) for p in paths)


def events_frame(events: Sequence[Event]) -> pl.DataFrame:
    """Final events as a table: id, kind, rule_id, start, end (seconds), members, zone_id, line_id, score."""
    rows = [{"id": e.id, "kind": e.kind, "rule_id": e.rule_id, "start": round(e.start, 2), "end": round(e.end, 2),
             "members": list(e.member_ids), "zone_id": e.zone_id, "line_id": e.line_id, "score": round(e.score, 3)}
            for e in final_events(events)]
    schema = {"id": pl.String, "kind": pl.String, "rule_id": pl.String, "start": pl.Float64, "end": pl.Float64,
              "members": pl.List(pl.Int64), "zone_id": pl.String, "line_id": pl.String, "score": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row")
