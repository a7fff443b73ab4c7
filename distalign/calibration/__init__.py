"""Calibration of predicted distributions: temperature scaling of log-probs (Meister et al. 2024) and
supervised regression calibration (Kambhatla et al. 2025), with their learning curves, out-of-domain and
per-group analyses. The sweep calls :func:`~distalign.calibration.stage.calibrate_items` once per cell and
:func:`~distalign.calibration.report.sweep_tables` once at the end; few-shot planning draws its examples
with :func:`~distalign.calibration.sampling.few_shot_sets`.

Import from the modules, not the package: planning needs only :mod:`~distalign.calibration.sampling`, and a
package that imported every module would load scikit-learn and matplotlib for a dry run.
"""
