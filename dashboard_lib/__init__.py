"""Fair Clustering Lab's library: datasets, methods, metrics, the run store and the audit.

`dashboard_lib.audit(assignment, groups, y=None, embedding=None)` audits any clustering (see dashboard_lib.auditing).
"""


def __getattr__(name):  # lazy, so `python -m dashboard_lib` and the app do not pay for what they do not use
    if name == "audit":
        from .auditing import audit

        return audit
    raise AttributeError(f"module 'dashboard_lib' has no attribute {name!r}")
