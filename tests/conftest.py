"""Shared fixtures: where the shared footage lives, and skipping integration tests when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("YOLO_CONFIG_DIR", str(Path(__file__).resolve().parent.parent / ".cache" / "ultralytics"))


@pytest.fixture(scope="session")
def shared() -> Path:
    from analytics.paths import shared_dir

    path = shared_dir()
    if not (path / "footage").is_dir():
        pytest.fail(f"shared material not found at {path}; set ANALYTICS_SHARED or put it at ../shared")
    return path


@pytest.fixture(scope="session")
def footage(shared: Path) -> Path:
    return shared / "footage"
