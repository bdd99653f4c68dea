"""Analyst helpers behind the notebooks in ``notebooks/``: threshold sweeps, targets, tuned configs, per-frame
tracking errors, plots and MLflow logging.

The notebooks only call these functions and plot; the logic is here, where it is tested. Importing this
package loads nothing heavy: matplotlib, MLflow and TrackEval are imported inside the functions that need
them.
"""
