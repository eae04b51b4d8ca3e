"""Classic fair clustering for any number of groups: fairlets, fair assignment, repair, socially fair k-means and
variational fair clustering, as pure numpy/scipy functions (each module states its paper, guarantee and cost)."""

from ._common import proportional_bounds
from .assignment import AssignmentResult, fair_assignment
from .fairlets import FairletResult, fairlet_clustering
from .repair import RepairResult, repair
from .socially_fair import SociallyFairResult, group_costs, socially_fair_kmeans
from .variational import VariationalResult, kl_fairness, variational_fair_kmeans

__all__ = [
    "AssignmentResult", "FairletResult", "RepairResult", "SociallyFairResult", "VariationalResult",
    "fair_assignment", "fairlet_clustering", "group_costs", "kl_fairness", "proportional_bounds", "repair",
    "socially_fair_kmeans", "variational_fair_kmeans",
]
