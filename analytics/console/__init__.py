"""The operator console: a FastAPI app over the alert store and the live frames (see :mod:`.app`).

Importing this package is light: FastAPI is imported by :mod:`analytics.console.app` only.
"""
