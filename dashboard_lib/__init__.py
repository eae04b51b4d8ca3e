"""Fair Clustering Lab's library: datasets, methods, metrics, the run store and the audit.

Every method is a scikit-learn style estimator, e.g. `FCMI(n_clusters=10, random_state=0).fit(X, sensitive=g).labels_`
(see dashboard_lib.methods.base.Method.fit); `audit(assignment, groups, y=None, embedding=None)` audits any clustering
(see dashboard_lib.auditing).
"""

# The estimators, one per registered method (dashboard_lib.methods.REGISTRY; a test keeps the two equal).
ESTIMATORS = ("KMeans", "AEKMeans", "DEC", "DFC", "FCMI", "IDEC", "StatDEC", "ERM", "ClusterFix", "SENet", "InvSENnet", "Fairlets",
              "FairAssignment", "VariationalFair", "SociallyFairKMeans")
__all__ = ["audit", *ESTIMATORS]


def __getattr__(name):  # lazy, so `python -m dashboard_lib` and the app do not pay for what they do not use
    if name == "audit":
        from .auditing import audit

        return audit
    if name in ESTIMATORS:
        from . import methods

        return getattr(methods, name)
    raise AttributeError(f"module 'dashboard_lib' has no attribute {name!r}")
