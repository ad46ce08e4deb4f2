"""Scoring translations: the metrics, the evaluator that test.py and validation share, and
result writing.

==================  ===============================================================
``metrics/``        the metric table (``METRICS``: one entry per metric, carrying its
                    compute function), ``MetricSuite`` and the pretrained weights
``evaluator.py``    ``Evaluator``: which visuals a model is scored on, ground-truth pairs,
                    per-translation results; ``evaluate`` for validation
``results.py``      test results saved in the data's own type, with gallery previews
==================  ===============================================================

Formatting results for people (console lines, gallery cells, tables) is ``reporting/``'s
job; this room computes and stores numbers only. To add a metric, see
``evaluation/metrics/__init__.py``.
"""
