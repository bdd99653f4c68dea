"""Scene geometry: validation at load, homography DLT, point-in-polygon and line sides."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from analytics.geometry import (
    GroundCalibration,
    Line,
    SceneGeometry,
    Zone,
    apply_homography,
    metres_per_pixel,
    points_in_polygon,
    side_of_line,
    to_ground,
)

SQUARE = [(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8)]
GROUND = [(0.0, 0.0), (10.0, 0.0), (10.0, 30.0), (0.0, 30.0)]
TRAPEZOID = [(0.1, 0.9), (0.9, 0.9), (0.6, 0.4), (0.4, 0.4)]


@pytest.mark.parametrize(
    ("model", "kwargs", "message"),
    [
        (Zone, {"id": "z", "polygon": [(0.1, 0.1), (0.9, 0.9), (0.9, 0.1), (0.1, 0.9)]}, "self-intersecting"),
        (Zone, {"id": "z", "polygon": [(0.1, 0.1), (0.5, 0.1), (0.1, 0.5), (0.5, 0.5), (0.3, 0.9)]},
         "self-intersecting"),
        (Zone, {"id": "z", "polygon": [(0.1, 0.1), (1.2, 0.1), (0.5, 0.5)]}, "outside the frame"),
        (Zone, {"id": "z", "polygon": [(0.1, 0.1), (0.5, 0.1)]}, "at least 3 points"),
        (Zone, {"id": "z", "polygon": SQUARE, "allowed_direction": (0.0, 0.0)}, "non-zero"),
        (Line, {"id": "l", "a": (0.1, -0.1), "b": (0.5, 0.5)}, "outside the frame"),
        (Line, {"id": "l", "a": (0.5, 0.5), "b": (0.5, 0.5)}, "coincide"),
        (GroundCalibration, {"image_points": [(0.1, 0.1), (0.2, 0.2), (0.3, 0.3), (0.4, 0.4)],
                             "ground_points": GROUND}, "collinear"),
        (GroundCalibration, {"image_points": [(0.1, 0.1), (0.2, 0.2), (0.3, 0.3), (0.9, 0.1)],
                             "ground_points": GROUND}, "three of the four image points are collinear"),
        (GroundCalibration, {"image_points": SQUARE, "ground_points": [(0, 0), (1, 1), (2, 2), (3, 3)]},
         "ground points are collinear"),
        (GroundCalibration, {"image_points": SQUARE[:3], "ground_points": GROUND[:3]}, "at least 4 points"),
        (GroundCalibration, {"image_points": [(0.1, 0.1), (1.5, 0.1), (0.9, 0.9), (0.1, 0.9)],
                             "ground_points": GROUND}, "outside the frame"),
        (SceneGeometry, {"zones": [{"id": "a", "polygon": SQUARE}], "lines": [{"id": "a", "a": (0, 0), "b": (1, 1)}]},
         "unique"),
    ],
)
def test_invalid_geometry_is_rejected_with_a_clear_message(model, kwargs, message):
    with pytest.raises(ValidationError, match=message):
        model.model_validate(kwargs)


@pytest.mark.parametrize("image_points", [SQUARE, TRAPEZOID, [*TRAPEZOID, (0.5, 0.6)]])
def test_homography_maps_calibration_points_back(image_points):
    ground = GROUND if len(image_points) == 4 else None
    if ground is None:  # a fifth point consistent with the 4-point homography
        h4 = GroundCalibration(image_points=TRAPEZOID, ground_points=GROUND).homography
        ground = [*GROUND, tuple(apply_homography(np.array([image_points[-1]]), h4)[0])]
    cal = GroundCalibration(image_points=image_points, ground_points=ground)
    mapped = apply_homography(np.array(image_points), cal.homography)
    np.testing.assert_allclose(mapped, np.array(ground), atol=1e-6)


def test_to_ground_scales_pixels_and_falls_back_to_person_height():
    cal = GroundCalibration(image_points=TRAPEZOID, ground_points=GROUND)
    px = np.array(TRAPEZOID) * np.array([1920.0, 1080.0])
    np.testing.assert_allclose(to_ground(px, (1920, 1080), cal), np.array(GROUND), atol=1e-6)
    mpp = metres_per_pixel(np.array([170.0, 85.0]))
    np.testing.assert_allclose(mpp, [0.01, 0.02])
    np.testing.assert_allclose(to_ground(np.array([[100.0, 0.0], [0.0, 100.0]]), (640, 480), None,
                                         metres_per_px=mpp), [[1.0, 0.0], [0.0, 2.0]])
    with pytest.raises(ValueError, match="metres_per_px"):
        to_ground(px, (1920, 1080), None)
    with pytest.raises(ValueError, match="positive"):
        metres_per_pixel(np.array([0.0]))


CONCAVE = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 0.4), (0.0, 1.0)]  # a notch cut from the bottom


@pytest.mark.parametrize(
    ("polygon", "point", "inside"),
    [
        (SQUARE, (0.5, 0.5), True),
        (SQUARE, (0.1, 0.5), False),
        (SQUARE, (0.5, 0.9), False),
        (SQUARE, (0.79, 0.21), True),
        (CONCAVE, (0.5, 0.2), True),
        (CONCAVE, (0.5, 0.8), False),  # in the notch
        (CONCAVE, (0.1, 0.8), True),
        (CONCAVE, (0.9, 0.8), True),
        (CONCAVE, (1.5, 0.5), False),
    ],
)
def test_points_in_polygon(polygon, point, inside):
    assert points_in_polygon(np.array([point]), np.array(polygon)).tolist() == [inside]


def test_points_in_polygon_is_vectorised_and_agrees_with_zone():
    pts = np.random.default_rng(0).uniform(0, 1, (500, 2))
    got = points_in_polygon(pts, np.array(SQUARE))
    expected = np.all((pts > 0.2) & (pts < 0.8), axis=1)
    assert got.shape == (500,)
    assert np.array_equal(got, expected)
    zone = Zone(id="z", polygon=SQUARE)
    assert np.array_equal(zone.contains(pts * [640, 480], (640, 480)), expected)


def test_side_of_line_positive_is_right_of_a_to_b_on_screen():
    line = Line(id="l", a=(0.0, 0.5), b=(1.0, 0.5))  # drawn left to right: positive side is below
    pts = np.array([[0.5, 0.9], [0.5, 0.1], [0.3, 0.5]])
    assert side_of_line(pts, line).tolist() == [1, -1, 0]
    assert side_of_line(pts * [640, 480], line, frame_size=(640, 480)).tolist() == [1, -1, 0]


def test_zone_direction_is_normalised_and_models_are_frozen():
    zone = Zone(id="lane", polygon=SQUARE, allowed_direction=(3.0, 4.0))
    assert zone.allowed_direction == pytest.approx((0.6, 0.8))
    with pytest.raises(ValidationError):
        zone.id = "other"
    with pytest.raises(ValidationError, match="extra"):
        Zone.model_validate({"id": "z", "polygon": SQUARE, "colour": "red"})
    geo = SceneGeometry(zones=[zone])
    assert geo.zone("lane") is zone
    with pytest.raises(KeyError, match="known lines"):
        geo.line("nope")


def test_calibrations_compare_by_their_points_even_after_the_homography_is_cached() -> None:
    points = {"image_points": [[0, 0], [1, 0], [1, 1], [0, 1]], "ground_points": [[0, 0], [4, 0], [4, 3], [0, 3]]}
    a, b = GroundCalibration(**points), GroundCalibration(**points)
    _ = a.homography, b.homography
    assert a == b and hash(a) == hash(b)
    assert a != GroundCalibration(**{**points, "ground_points": [[0, 0], [5, 0], [5, 3], [0, 3]]})


def test_the_per_edge_inside_test_for_many_points_matches_the_broadcast_one_exactly() -> None:
    from analytics.geometry import _EDGE_LOOP_POINTS, _points_in_polygon_by_edge

    rng = np.random.default_rng(0)
    polygon = np.array([[0.1, 0.1], [0.9, 0.2], [0.6, 0.5], [0.95, 0.9], [0.2, 0.8], [0.3, 0.45]])
    points = np.concatenate([rng.random((5000, 2)), polygon, (polygon + np.roll(polygon, -1, axis=0)) / 2])
    few = np.concatenate([points_in_polygon(chunk, polygon) for chunk in np.array_split(points, 100)])
    assert len(points) // 100 < _EDGE_LOOP_POINTS <= len(points)
    assert np.array_equal(points_in_polygon(points, polygon), few)
    assert np.array_equal(_points_in_polygon_by_edge(points, polygon), few)
    assert 0.2 < few.mean() < 0.8
