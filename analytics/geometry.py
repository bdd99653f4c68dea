"""Scene geometry per camera: zones, tripwire lines and an optional ground calibration.

All geometry is declared in *normalised image coordinates*: ``(x, y)`` in ``[0, 1]``, origin top-left,
x right, y down, so one declaration holds at any decoded resolution. Helpers that take points in pixels
also take ``frame_size = (width, height)`` in pixels to scale the geometry.

Invalid geometry fails when the model is built (at config load): a self-intersecting polygon, a point
outside the frame, a degenerate or ill-conditioned homography, each with a message naming the value.

Distances on the ground:

* with a :class:`GroundCalibration`, image points map to metres on the ground plane through a homography
  (:func:`to_ground`);
* without one, the documented fallback assumes **a person is 1.7 m tall**: the scale near a person is
  ``metres_per_pixel = 1.7 / box_height_px`` (:func:`metres_per_pixel`). It ignores perspective across
  the frame, so use it only for distances between nearby objects (for example people in a group), never
  for speeds across the whole frame.

Depends only on numpy and pydantic (no OpenCV).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Assumed height of a standing person, metres (the fallback unit without calibration).
PERSON_HEIGHT_M = 1.7

#: Relative singular-value threshold under which a point set is called collinear.
_COLLINEAR_TOL = 1e-6
#: Homographies whose (Hartley-normalised) condition number exceeds this are rejected.
_MAX_CONDITION = 1e10

Point = tuple[float, float]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------------
# Pure numpy helpers
# --------------------------------------------------------------------------------------------------


def _cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z of (a - o) x (b - o); arrays (..., 2) broadcast; > 0 when b is clockwise of a on screen (y down)."""
    return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (b[..., 0] - o[..., 0])


def segments_intersect(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """Whether segments ``p0-p1`` and ``q0-q1`` share at least one point (touching counts).

    Args:
        p0, p1, q0, q1: (..., 2) float, any common unit; broadcast against each other.

    Returns:
        (...) bool.
    """
    d1, d2 = _cross(q0, q1, p0), _cross(q0, q1, p1)
    d3, d4 = _cross(p0, p1, q0), _cross(p0, p1, q1)
    straddle = (d1 * d2 <= 0) & (d3 * d4 <= 0)
    collinear = (d1 == 0) & (d2 == 0)
    lo_p, hi_p = np.minimum(p0, p1), np.maximum(p0, p1)
    lo_q, hi_q = np.minimum(q0, q1), np.maximum(q0, q1)
    boxes_overlap = np.all((lo_p <= hi_q) & (lo_q <= hi_p), axis=-1)
    return straddle & (~collinear | boxes_overlap)


def polygon_self_intersects(polygon: np.ndarray) -> bool:
    """Whether a closed polygon's edges cross or touch anywhere but at shared vertices of adjacent edges.

    Args:
        polygon: (M, 2) float vertices, M >= 3, the closing edge implied.
    """
    poly = np.asarray(polygon, dtype=np.float64)
    m = len(poly)
    start, end = poly, np.roll(poly, -1, axis=0)
    i, j = np.triu_indices(m, k=2)
    non_adjacent = ~((i == 0) & (j == m - 1))
    i, j = i[non_adjacent], j[non_adjacent]
    return bool(np.any(segments_intersect(start[i], end[i], start[j], end[j])))


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd (ray casting) inside test, vectorised over points and edges.

    Args:
        points: (N, 2) float, same frame and unit as ``polygon``.
        polygon: (M, 2) float vertices of a simple polygon (convex or concave), closing edge implied.

    Returns:
        (N,) bool. Points exactly on an edge may fall either way.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    poly = np.asarray(polygon, dtype=np.float64)
    if len(pts) >= _EDGE_LOOP_POINTS:  # many points (a whole track log): one pass per edge, no (N, M) temporaries
        return _points_in_polygon_by_edge(pts, poly)
    a, b = poly[None, :, :], np.roll(poly, -1, axis=0)[None, :, :]
    px, py = pts[:, 0:1], pts[:, 1:2]
    spans = (a[..., 1] > py) != (b[..., 1] > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = a[..., 0] + (py - a[..., 1]) * (b[..., 0] - a[..., 0]) / (b[..., 1] - a[..., 1])
    crossings = spans & (px < x_cross)
    return (np.count_nonzero(crossings, axis=1) % 2) == 1


#: From this many points, :func:`points_in_polygon` loops over edges instead of broadcasting points x edges.
_EDGE_LOOP_POINTS = 256


def _points_in_polygon_by_edge(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Same test and the same arithmetic, element by element, as the broadcast form (identical results)."""
    px, py = pts[:, 0], pts[:, 1]
    inside = np.zeros(len(pts), bool)
    for (ax, ay), (bx, by) in zip(poly.tolist(), np.roll(poly, -1, axis=0).tolist(), strict=True):
        spans = (ay > py) != (by > py)
        if not spans.any():
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = ax + (py - ay) * (bx - ax) / (by - ay)
        inside ^= spans & (px < x_cross)
    return inside


def _scale(points: np.ndarray, frame_size: tuple[float, float]) -> np.ndarray:
    return np.asarray(points, dtype=np.float64).reshape(-1, 2) * np.asarray(frame_size, dtype=np.float64)


def signed_distance(points: np.ndarray, line: Line, *, frame_size: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Signed perpendicular distance of points to the (infinite) line through ``line.a -> line.b``.

    Args:
        points: (N, 2) float in the unit of ``frame_size`` (pixels with the frame's (width, height);
            normalised coordinates with the default ``(1, 1)``).
        line: the tripwire; positive on its positive side (see :class:`Line`).
        frame_size: (width, height) that scales the normalised line endpoints.

    Returns:
        (N,) float64, same unit as ``points``.
    """
    a, b = _scale(line.a, frame_size)[0], _scale(line.b, frame_size)[0]
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return _cross(a, b, pts) / np.linalg.norm(b - a)


def side_of_line(points: np.ndarray, line: Line, *, frame_size: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """(N,) int8 side of each point: +1 positive side, -1 negative side, 0 exactly on the line."""
    return np.sign(signed_distance(points, line, frame_size=frame_size)).astype(np.int8)


def position_along(points: np.ndarray, line: Line, *, frame_size: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """(N,) float64 projection parameter along ``a -> b``: 0 at ``a``, 1 at ``b``; outside [0, 1] beyond ends."""
    a, b = _scale(line.a, frame_size)[0], _scale(line.b, frame_size)[0]
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    ab = b - a
    return (pts - a) @ ab / float(ab @ ab)


def metres_per_pixel(box_height_px: np.ndarray, *, person_height_m: float = PERSON_HEIGHT_M) -> np.ndarray:
    """Fallback ground scale without calibration: ``person_height_m / box_height_px``.

    Args:
        box_height_px: (N,) float, heights of *person* boxes in pixels (> 0).
        person_height_m: assumed person height in metres (1.7 by default).

    Returns:
        (N,) float64 metres per pixel near each person. Only meaningful near that person (perspective).
    """
    h = np.asarray(box_height_px, dtype=np.float64).reshape(-1)
    if np.any(~np.isfinite(h)) or np.any(h <= 0):
        raise ValueError(f"box heights must be positive and finite pixels, got {h[(h <= 0) | ~np.isfinite(h)]}")
    return person_height_m / h


def apply_homography(points: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """Map (N, 2) points through a 3x3 homography; returns (N, 2) float64 (inf where w == 0).

    Written element by element rather than as a matrix product: a BLAS product may round differently
    depending on how many points it is given, and the rules must give the same answer for one frame's
    points as for a whole track log's (live and replay agree exactly).
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    h = np.asarray(homography, dtype=np.float64)
    x, y = pts[:, 0], pts[:, 1]
    out = np.empty((len(pts), 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
        out[:, 0] = (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / w
        out[:, 1] = (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / w
    return out


def to_ground(
    points_px: np.ndarray,
    frame_size: tuple[float, float],
    calibration: GroundCalibration | None,
    *,
    metres_per_px: float | np.ndarray | None = None,
) -> np.ndarray:
    """Ground-plane positions of image points, metres.

    Args:
        points_px: (N, 2) float, pixels of the decoded frame, top-left origin (typically ``tracks.anchor``).
        frame_size: (width, height) of the decoded frame in pixels.
        calibration: the camera's ground calibration, or None for the fallback.
        metres_per_px: the fallback scale when ``calibration`` is None: a scalar or (N,) array, for example
            from :func:`metres_per_pixel`. Positions are then ``points_px * metres_per_px`` (image axes,
            no perspective correction). Ignored with a calibration.

    Returns:
        (N, 2) float64 metres: ground coordinates of the calibration frame, or scaled image axes.
    """
    pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
    if calibration is not None:
        return apply_homography(pts / np.asarray(frame_size, dtype=np.float64), calibration.homography)
    if metres_per_px is None:
        raise ValueError("without a ground calibration, pass metres_per_px (see metres_per_pixel)")
    scale = np.asarray(metres_per_px, dtype=np.float64)
    return pts * (scale.reshape(-1, 1) if scale.ndim else scale)


def _hartley(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Similarity T moving points to zero mean, mean distance sqrt(2); returns (T (3,3), T-mapped points)."""
    centre = points.mean(axis=0)
    spread = np.mean(np.linalg.norm(points - centre, axis=1))
    s = np.sqrt(2.0) / spread
    t = np.array([[s, 0, -s * centre[0]], [0, s, -s * centre[1]], [0, 0, 1.0]])
    return t, (points - centre) * s


def _check_not_collinear(points: np.ndarray, what: str) -> None:
    centred = points - points.mean(axis=0)
    sv = np.linalg.svd(centred, compute_uv=False)
    if sv[0] == 0 or sv[1] / sv[0] < _COLLINEAR_TOL:
        raise ValueError(f"degenerate calibration: the {what} are collinear (or coincide): {points.tolist()}")


def _check_no_collinear_triple(points: np.ndarray, what: str) -> None:
    """With exactly four points, any three collinear make the homography degenerate."""
    if len(points) != 4:
        return
    idx = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]])
    tri = points[idx]
    twice_area = np.abs(_cross(tri[:, 0], tri[:, 1], tri[:, 2]))
    scale = np.max(np.ptp(points, axis=0)) ** 2
    bad = np.flatnonzero(twice_area <= _COLLINEAR_TOL * scale)
    if len(bad):
        raise ValueError(f"degenerate calibration: three of the four {what} are collinear: "
                         f"{points[idx[bad[0]]].tolist()}")


def dlt_homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Homography H (3, 3) with ``dst ~ H @ src`` by the normalised DLT (least squares for N > 4).

    Args:
        src: (N, 2) float, N >= 4. dst: (N, 2) float.

    Raises:
        ValueError: the point sets are collinear, the solution is not unique (for example three of four
            points collinear), or the result is ill-conditioned.
    """
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    _check_not_collinear(src, "image points")
    _check_not_collinear(dst, "ground points")
    _check_no_collinear_triple(src, "image points")
    _check_no_collinear_triple(dst, "ground points")
    t_src, s = _hartley(src)
    t_dst, d = _hartley(dst)
    zeros, ones = np.zeros(len(s)), np.ones(len(s))
    rows_x = np.stack([-s[:, 0], -s[:, 1], -ones, zeros, zeros, zeros, d[:, 0] * s[:, 0], d[:, 0] * s[:, 1], d[:, 0]], 1)
    rows_y = np.stack([zeros, zeros, zeros, -s[:, 0], -s[:, 1], -ones, d[:, 1] * s[:, 0], d[:, 1] * s[:, 1], d[:, 1]], 1)
    _, sv, vt = np.linalg.svd(np.concatenate([rows_x, rows_y]))
    sv = np.pad(sv, (0, 9 - len(sv)))  # 4 points give 8 singular values; the 9th is then 0
    if sv[7] / sv[0] < _COLLINEAR_TOL:  # a null space of dimension > 1: no unique solution
        raise ValueError("degenerate calibration: the homography is not unique (three or more points collinear?)")
    h_norm = vt[-1].reshape(3, 3)
    if np.linalg.cond(h_norm) > _MAX_CONDITION:
        raise ValueError(f"ill-conditioned calibration: homography condition number {np.linalg.cond(h_norm):.3g}")
    h = np.linalg.inv(t_dst) @ h_norm @ t_src
    return h / h[2, 2] if abs(h[2, 2]) > 1e-12 else h / np.linalg.norm(h)


def _check_normalised(points: tuple[Point, ...]) -> None:
    for x, y in points:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"point ({x}, {y}) is outside the frame; coordinates are normalised to [0, 1]")


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------


class Zone(_Frozen):
    """A polygonal zone in normalised image coordinates (a lane, a square, a pedestrian area...)."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="zone id, unique within the camera")
    polygon: tuple[Point, ...] = Field(description="3 or more (x, y) vertices normalised to [0, 1], top-left "
                                       "origin; a simple polygon (edges must not cross)")
    allowed_direction: Point | None = Field(None, description="lane zones: allowed direction of travel "
                                            "(dx, dy) on screen, in pixels, x right, y down; stored as a unit vector; "
                                            "null: any direction")

    @field_validator("polygon")
    @classmethod
    def _valid_polygon(cls, value: tuple[Point, ...]) -> tuple[Point, ...]:
        if len(value) < 3:
            raise ValueError(f"a polygon needs at least 3 points, got {len(value)}")
        _check_normalised(value)
        poly = np.asarray(value, dtype=np.float64)
        if np.any(np.all(poly == np.roll(poly, -1, axis=0), axis=1)):
            raise ValueError(f"polygon has repeated consecutive vertices: {list(value)}")
        if polygon_self_intersects(poly):
            raise ValueError(f"polygon is self-intersecting (its edges cross): {list(value)}")
        if np.sum(_cross(np.zeros(2), poly, np.roll(poly, -1, axis=0))) == 0:
            raise ValueError(f"polygon has zero area: {list(value)}")
        return value

    @field_validator("allowed_direction")
    @classmethod
    def _unit_direction(cls, value: Point | None) -> Point | None:
        if value is None:
            return None
        norm = float(np.hypot(*value))
        if not np.isfinite(norm) or norm < 1e-9:
            raise ValueError(f"allowed_direction must be a non-zero vector, got {value}")
        return (value[0] / norm, value[1] / norm)

    def polygon_px(self, frame_size: tuple[float, float]) -> np.ndarray:
        """(M, 2) float64 vertices in pixels for a frame of (width, height)."""
        return _scale(self.polygon, frame_size)

    def contains(self, points_px: np.ndarray, frame_size: tuple[float, float]) -> np.ndarray:
        """(N,) bool: which of the (N, 2) pixel points lie inside the zone."""
        return points_in_polygon(points_px, self.polygon_px(frame_size))


class Line(_Frozen):
    """A tripwire segment from ``a`` to ``b`` in normalised image coordinates.

    Positive direction: the normal pointing to the *right* of ``a -> b`` as seen on screen (y down). For a
    horizontal line drawn left to right (``a=(0, .5)``, ``b=(1, .5)``) the positive side is below it, so an
    object moving down the image crosses in the positive direction (+1), one moving up in the negative (-1).
    """

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="line id, unique within the camera")
    a: Point = Field(description="first endpoint (x, y), normalised to [0, 1]")
    b: Point = Field(description="second endpoint (x, y), normalised to [0, 1]; positive side is right of a->b")

    @model_validator(mode="after")
    def _valid_line(self) -> Line:
        _check_normalised((self.a, self.b))
        if self.a == self.b:
            raise ValueError(f"line endpoints coincide: {self.a}")
        return self


class GroundCalibration(_Frozen):
    """Image points with their ground-plane coordinates, giving an image -> ground homography."""

    image_points: tuple[Point, ...] = Field(description="4 or more (x, y) image points normalised to [0, 1], "
                                            "no three of four collinear")
    ground_points: tuple[Point, ...] = Field(description="the matching (X, Y) ground coordinates in metres, "
                                             "any planar frame (for example a survey or a measured rectangle)")

    @model_validator(mode="after")
    def _valid_calibration(self) -> GroundCalibration:
        if len(self.image_points) < 4:
            raise ValueError(f"a ground calibration needs at least 4 points, got {len(self.image_points)}")
        if len(self.image_points) != len(self.ground_points):
            raise ValueError(f"{len(self.image_points)} image points but {len(self.ground_points)} ground points")
        _check_normalised(self.image_points)
        _ = self.homography  # computes and validates once; cached
        return self

    def __eq__(self, other: object) -> bool:
        # pydantic compares __dict__, which holds the cached numpy homography (ambiguous truth value)
        if not isinstance(other, GroundCalibration):
            return NotImplemented
        return (self.image_points, self.ground_points) == (other.image_points, other.ground_points)

    def __hash__(self) -> int:
        return hash((self.image_points, self.ground_points))

    @cached_property
    def homography(self) -> np.ndarray:
        """(3, 3) float64 H mapping normalised image (x, y, 1) to ground metres (X, Y, 1), up to scale."""
        return dlt_homography(np.asarray(self.image_points), np.asarray(self.ground_points))


class SceneGeometry(_Frozen):
    """All geometry of one camera."""

    zones: tuple[Zone, ...] = Field((), description="zones, by id")
    lines: tuple[Line, ...] = Field((), description="tripwire lines, by id")
    calibration: GroundCalibration | None = Field(None, description="ground calibration; null: distances use "
                                                  f"the person-height fallback ({PERSON_HEIGHT_M} m)")

    @model_validator(mode="after")
    def _unique_ids(self) -> SceneGeometry:
        ids = [z.id for z in self.zones] + [ln.id for ln in self.lines]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"zone and line ids must be unique within a camera, repeated: {dupes}")
        return self

    def zone(self, zone_id: str) -> Zone:
        """The zone with this id; KeyError naming the known ids otherwise."""
        for z in self.zones:
            if z.id == zone_id:
                return z
        raise KeyError(f"no zone {zone_id!r}; known zones: {[z.id for z in self.zones]}")

    def line(self, line_id: str) -> Line:
        """The line with this id; KeyError naming the known ids otherwise."""
        for ln in self.lines:
            if ln.id == line_id:
                return ln
        raise KeyError(f"no line {line_id!r}; known lines: {[ln.id for ln in self.lines]}")
