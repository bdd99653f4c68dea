"""Importing the package and the detector registry loads no heavy backend (boxmot-style guard)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "openvino", "onnxruntime", "cv2", "ultralytics")


@pytest.mark.parametrize("module", ["analytics", "analytics.detectors", "analytics.models",
                                    "analytics.detectors.postprocess", "analytics.detectors.filtering"])
def test_import_loads_no_heavy_backend(module):
    code = f"import json, sys, {module}; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert json.loads(out.stdout) == [], f"import {module} loaded {out.stdout.strip()}"


def test_unknown_backend_is_named():
    from analytics.detectors import _backend_class

    with pytest.raises(ValueError, match="'tensorrt'.*onnxruntime"):
        _backend_class("tensorrt")
