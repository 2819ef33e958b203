"""Job execution: metric extraction, direction rule, trial execution.

Kept import-light on purpose: import the submodules you need, e.g.
``from tao_automl.execution.metrics import extract_metric, MetricStream``.
"""
