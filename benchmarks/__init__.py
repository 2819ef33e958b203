"""tao_automl benchmarks: search quality, orchestration overhead, scale.

Run with ``python -m benchmarks --quick`` (about 5 minutes) or ``--full``
(under 30 minutes on 2 cores); see ``benchmarks/README.md`` for the method.
"""
