"""Continuous recording: video segments per camera, their index in the store, retention, requisitions and
exports (see the modules). Importing this package is light."""
