"""Labelled event files: validation with the key named, and one-to-one matching on kind, time and place."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.labels import LabelsError, load_labels, match_labels
from analytics.rules.base import Event


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "labels.yaml"
    path.write_text(text)
    return path


def _event(n: int, kind: str, start: float, end: float, *, zone: str | None = None, line: str | None = None,
           status: str = "closed", **evidence) -> Event:
    return Event(f"cam:r:{n}", kind, "r", "cam", status, start, end, evidence=evidence, zone_id=zone, line_id=line)


LABELS = """
camera: cam
slack: 2
labels:
  - {kind: loitering, start: 10, end: 20, zone: table}
  - {kind: loitering, start: 30, end: 40, zone: table}
  - {kind: line_crossing, start: 50, end: 50, line: north, direction: negative}
  - {kind: gathering, start: 60, end: 90, region: [[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.5]]}
"""


def test_matching_on_kind_time_and_place(tmp_path: Path) -> None:
    labels = load_labels(_write(tmp_path, LABELS))
    events = [
        _event(0, "loitering", 9.0, 15.0, zone="table", status="open"),
        _event(0, "loitering", 9.0, 21.0, zone="table"),       # final record of event 0: matches label 0
        _event(1, "loitering", 41.5, 45.0, zone="table"),      # within the 2 s slack of label 1
        _event(2, "loitering", 60.0, 70.0, zone="door"),       # wrong place and no label then: false positive
        _event(3, "line_crossing", 50.2, 50.2, line="north", direction=1),  # wrong direction
        _event(4, "gathering", 65.0, 80.0, centroid_norm=[0.2, 0.3]),
        Event("other:r:9", "loitering", "r", "other", "closed", 10.0, 20.0, zone_id="table"),  # other camera
    ]
    m = match_labels(events, labels)
    assert (m.tp, m.fp, m.fn) == (3, 2, 1)
    assert m.pairs == [("cam:r:0", 0), ("cam:r:1", 1), ("cam:r:4", 3)]
    assert m.unmatched_labels == [2] and m.by_kind["line_crossing"].fn == 1
    assert m.precision == pytest.approx(3 / 5) and m.recall == pytest.approx(3 / 4)


def test_one_event_matches_one_label(tmp_path: Path) -> None:
    labels = load_labels(_write(tmp_path, "labels: [{kind: loitering, start: 10, end: 20}, "
                                          "{kind: loitering, start: 12, end: 18}]"))
    m = match_labels([_event(0, "loitering", 10.0, 20.0)], labels)
    assert (m.tp, m.fp, m.fn) == (1, 0, 1)


def test_a_gathering_outside_the_region_does_not_match(tmp_path: Path) -> None:
    labels = load_labels(_write(tmp_path, LABELS))
    m = match_labels([_event(4, "gathering", 65.0, 80.0, centroid_norm=[0.8, 0.8])], labels)
    assert m.tp == 0


@pytest.mark.parametrize("text,words", [
    ("labels: [{kind: loitering, start: 10, end: 5}]", "labels.0: Value error, end (5.0) is before start"),
    ("labels: [{kind: loitering, start: 1, end: 5, zone: t, colour: red}]", "labels.0.colour"),
    ("labels: [{kind: gathering, start: 1, end: 5, region: [[0, 0], [2, 0], [0, 1]]}]", "region"),
    ("labels: [{kind: line_crossing, start: 1, end: 1, direction: up}]", "labels.0.direction"),
    ("slack: -1", "slack"),
    ("[1, 2", "not valid YAML"),
])
def test_bad_files_name_the_key(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(LabelsError, match="labels.yaml") as err:
        load_labels(_write(tmp_path, text))
    assert words in str(err.value)
