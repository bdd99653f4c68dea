"""A batched constant-velocity Kalman filter over box centre and size, driven by real time steps.

State per track (8,): ``cx, cy, w, h`` in pixels and their rates ``vcx, vcy, vw, vh`` in pixels per second.
Measurement (4,): ``cx, cy, w, h``. All tracks live in one (T, 8) mean array and one (T, 8, 8) covariance
array; every operation is a numpy batch over tracks, with no per-track Python loop.

Noise is scaled by each box's height, so one set of parameters serves near and far objects:

* process noise: white-noise acceleration with standard deviation ``accel_std * h`` px/s² (discretised over
  ``dt``), so uncertainty grows correctly at any and at variable frame rates;
* measurement noise: ``measure_std * h`` px on each of cx, cy, w, h.

Pure functions: inputs are never modified, new arrays are returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATE_DIM = 8
MEAS_DIM = 4


@dataclass(frozen=True)
class KalmanParams:
    """Noise parameters, in units of the box height (dimensionless) and seconds.

    Attributes:
        accel_std: process acceleration noise, box heights per second squared.
        measure_std: measurement noise, box heights.
        init_velocity_std: velocity uncertainty of a new track, box heights per second.
    """

    accel_std: float = 1.0
    measure_std: float = 0.05
    init_velocity_std: float = 1.0

    def __post_init__(self) -> None:
        for name in ("accel_std", "measure_std", "init_velocity_std"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"KalmanParams.{name} must be > 0, got {value!r}")


def xyxy_to_measurement(xyxy: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy pixels -> (N, 4) float64 ``cx, cy, w, h`` pixels."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    wh = xyxy[:, 2:] - xyxy[:, :2]
    return np.concatenate([xyxy[:, :2] + wh / 2, wh], axis=1)


def state_to_xyxy(mean: np.ndarray) -> np.ndarray:
    """(T, 8) states -> (T, 4) float32 xyxy pixels (sizes clipped at 1 px)."""
    c, wh = mean[:, 0:2], np.maximum(mean[:, 2:4], 1.0)
    return np.concatenate([c - wh / 2, c + wh / 2], axis=1).astype(np.float32)


def initiate(measurement: np.ndarray, params: KalmanParams) -> tuple[np.ndarray, np.ndarray]:
    """New tracks from (N, 4) ``cx, cy, w, h`` measurements: (N, 8) means, (N, 8, 8) covariances."""
    n = len(measurement)
    mean = np.zeros((n, STATE_DIM))
    mean[:, :MEAS_DIM] = measurement
    h = np.maximum(measurement[:, 3], 1.0)
    std = np.empty((n, STATE_DIM))
    std[:, :MEAS_DIM] = 2.0 * params.measure_std * h[:, None]
    std[:, MEAS_DIM:] = params.init_velocity_std * h[:, None]
    std[:, [2, 3, 6, 7]] *= 0.5  # sizes change less than positions
    cov = np.zeros((n, STATE_DIM, STATE_DIM))
    idx = np.arange(STATE_DIM)
    cov[:, idx, idx] = std**2
    return mean, cov


def predict(mean: np.ndarray, cov: np.ndarray, dt: float, params: KalmanParams) -> tuple[np.ndarray, np.ndarray]:
    """Advance every track by ``dt`` seconds (dt >= 0). Returns new (T, 8) means and (T, 8, 8) covariances."""
    if dt < 0:
        raise ValueError(f"dt must be >= 0 seconds, got {dt}")
    if len(mean) == 0 or dt == 0:
        return mean.copy(), cov.copy()
    f = np.eye(STATE_DIM)
    f[np.arange(MEAS_DIM), np.arange(MEAS_DIM) + MEAS_DIM] = dt
    new_mean = mean @ f.T
    q_var = (params.accel_std * np.maximum(mean[:, 3], 1.0)) ** 2  # (T,)
    q_block = np.array([[dt**4 / 4, dt**3 / 2], [dt**3 / 2, dt**2]])  # white-noise acceleration over dt
    q = np.zeros((len(mean), STATE_DIM, STATE_DIM))
    for i in range(MEAS_DIM):  # four 2x2 blocks, each a batch over tracks
        scale = 0.25 if i >= 2 else 1.0  # sizes accelerate less than positions
        for a, ia in enumerate((i, i + MEAS_DIM)):
            for b, ib in enumerate((i, i + MEAS_DIM)):
                q[:, ia, ib] = scale * q_block[a, b] * q_var
    new_cov = f @ cov @ f.T + q
    return new_mean, new_cov


def update(mean: np.ndarray, cov: np.ndarray, measurement: np.ndarray,
           params: KalmanParams) -> tuple[np.ndarray, np.ndarray]:
    """Correct (K, 8) states with their (K, 4) ``cx, cy, w, h`` measurements (row i with row i)."""
    if len(mean) == 0:
        return mean.copy(), cov.copy()
    r_std = params.measure_std * np.maximum(measurement[:, 3], 1.0)
    s = cov[:, :MEAS_DIM, :MEAS_DIM] + (r_std**2)[:, None, None] * np.eye(MEAS_DIM)
    pht = cov[:, :, :MEAS_DIM]  # P H^T, (K, 8, 4)
    gain = np.linalg.solve(s, np.swapaxes(pht, 1, 2))  # S^-1 H P, (K, 4, 8); S is symmetric
    gain = np.swapaxes(gain, 1, 2)  # (K, 8, 4)
    innovation = measurement - mean[:, :MEAS_DIM]
    new_mean = mean + np.einsum("kij,kj->ki", gain, innovation)
    new_cov = cov - gain @ np.swapaxes(pht, 1, 2)
    return new_mean, new_cov
