"""The six baselines of the thesis and the harness that trains, evaluates and reports them (`lrfp bench`).

Importing this package imports no torch: the registry loads `benchmark.baselines` on first use.
"""
