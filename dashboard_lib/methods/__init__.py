"""Method registry: every method class registers here under its id; each is a scikit-learn style estimator."""
from __future__ import annotations

from .ae_kmeans import AEKMeans
from .base import PRESETS, Method, RunContext, RunStopped, TrainingDiverged, Variant, available_devices, resolve_device
from .classic import FairAssignment, Fairlets, SociallyFairKMeans, VariationalFair
from .clusterfix import ERM, ClusterFix
from .dec import DEC
from .dfc import DFC
from .fcmi import FCMI
from .kmeans import KMeans
from .senet import SENet, InvSENnet
from .statdec import IDEC, StatDEC

DEFAULT_METHOD = KMeans.id
ERR_UNKNOWN_METHOD = "unknown method '{id}'; valid ids: {valid}"

REGISTRY: dict[str, type[Method]] = {cls.id: cls for cls in (KMeans, AEKMeans, DEC, DFC, FCMI, IDEC, StatDEC, ERM, ClusterFix, SENet, InvSENnet,
                                                   Fairlets, FairAssignment, VariationalFair, SociallyFairKMeans)}


def get_method(method_id: str) -> type[Method]:
    if method_id not in REGISTRY:
        raise ValueError(ERR_UNKNOWN_METHOD.format(id=method_id, valid=", ".join(REGISTRY)))
    return REGISTRY[method_id]


__all__ = ["PRESETS", "Method", "RunContext", "RunStopped", "TrainingDiverged", "Variant", "REGISTRY", "DEFAULT_METHOD", "get_method",
           "resolve_device", "available_devices", *(cls.__name__ for cls in REGISTRY.values())]
