"""Metrics against tables computed by hand, scikit-learn, and every input error."""

import dataclasses
import re

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from dashboard_lib import metrics as m

# Cluster x group counts [[3, 1], [2, 2]]: cluster 0 holds 3 of group 0 and 1 of
# group 1, cluster 1 holds 2 and 2.
PRED_2X2 = np.array([0, 0, 0, 0, 1, 1, 1, 1])
GROUPS_2X2 = np.array([0, 0, 0, 1, 0, 0, 1, 1])


def thirty_groups() -> tuple[np.ndarray, np.ndarray]:
    """Group g (0..29) puts g + 1 samples in cluster 0 and 2 samples in cluster 1."""
    groups, pred = [], []
    for g in range(30):
        groups += [g] * (g + 3)
        pred += [0] * (g + 1) + [1, 1]
    return np.array(pred), np.array(groups)


# ---- Balance -----------------------------------------------------------------

def test_balance_2x2_table():
    # min(1/3, 2/2) = 1/3
    assert m.balance(PRED_2X2, GROUPS_2X2) == pytest.approx(1 / 3, rel=1e-12)


def test_balance_zero_when_a_cluster_misses_a_group():
    # cluster 1 = {group 0: 3, group 1: 0} -> 0/3 = 0
    assert m.balance([0, 0, 1, 1, 1], [0, 1, 0, 0, 0]) == 0.0


def test_unused_and_negative_cluster_ids_are_ignored():
    # Same partition as PRED_2X2 under ids 5 and 9 (0..4, 6..8 never used), or -1 and 9.
    for a, b in ((5, 9), (-1, 9)):
        pred = np.where(PRED_2X2 == 0, a, b)
        assert m.balance(pred, GROUPS_2X2) == pytest.approx(1 / 3, rel=1e-12)
        assert m.mnce(pred, GROUPS_2X2) == pytest.approx(0.850009662242632, rel=1e-12)


def test_balance_thirty_groups():
    # cluster 0 counts 1..30 -> 1/30; cluster 1 counts all 2 -> 2/2; min = 1/30
    pred, groups = thirty_groups()
    assert m.balance(pred, groups) == pytest.approx(1 / 30, rel=1e-12)


def test_balance_ceiling():
    # MNIST-USPS: 7291 USPS vs 60000 MNIST -> 7291/60000
    groups = np.repeat([0, 1], [60000, 7291])
    assert m.balance_ceiling(groups) == pytest.approx(0.12151666666666666, rel=1e-12)
    # 30 groups of sizes 3..32 -> 3/32
    assert m.balance_ceiling(thirty_groups()[1]) == 0.09375


# ---- Entropy -----------------------------------------------------------------

def test_entropy_2x2_table():
    # group 0: clusters (3, 2) of 5 -> -(3/5 ln 3/5 + 2/5 ln 2/5) = 0.6730116670092565
    # group 1: clusters (1, 2) of 3 -> -(1/3 ln 1/3 + 2/3 ln 2/3) = 0.6365141682948128
    result = m.entropy(PRED_2X2, GROUPS_2X2)
    np.testing.assert_allclose(result.per_group, [0.6730116670092565, 0.6365141682948128], rtol=1e-12)
    # (0.6730116670092565 + 0.6365141682948128) / 2
    assert result.mean == pytest.approx(0.6547629176520346, rel=1e-12)


def test_entropy_thirty_groups():
    # group g: clusters (g + 1, 2) of g + 3; g = 0 -> (1, 2)/3 = 0.6365141682948128,
    # g = 29 -> -(30/32 ln 30/32 + 2/32 ln 2/32) = 0.2337916587064593
    pred, groups = thirty_groups()
    result = m.entropy(pred, groups)
    assert result.per_group.shape == (30,)
    assert result.per_group[0] == pytest.approx(0.6365141682948128, rel=1e-12)
    assert result.per_group[29] == pytest.approx(0.2337916587064593, rel=1e-12)
    # mean over g of -((g+1)/(g+3) ln((g+1)/(g+3)) + 2/(g+3) ln(2/(g+3)))
    assert result.mean == pytest.approx(0.39925776363177945, rel=1e-12)


def test_entropy_maximum_is_ln_k_and_result_is_frozen():
    # Both groups spread evenly over 4 clusters -> ln 4 = 1.3862943611198906 each
    result = m.entropy([0, 1, 2, 3, 0, 1, 2, 3], [0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_allclose(result.per_group, [1.3862943611198906] * 2, rtol=1e-12)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.mean = 0.0


# ---- MNCE and F_beta ---------------------------------------------------------

def test_mnce_2x2_table():
    # H(G) = -(5/8 ln 5/8 + 3/8 ln 3/8) = 0.6615632381579821
    # H(G|C=0) = -(3/4 ln 3/4 + 1/4 ln 1/4) = 0.5623351446188083, H(G|C=1) = ln 2
    # min / H(G) = 0.5623351446188083 / 0.6615632381579821
    assert m.mnce(PRED_2X2, GROUPS_2X2) == pytest.approx(0.850009662242632, rel=1e-12)


def test_mnce_thirty_groups_and_missing_group():
    # H(G|C=0) over counts 1..30 of 465 = 3.2235664989034003, H(G|C=1) = ln 30,
    # H(G) over sizes 3..32 of 525 = 3.2670938254953366; 3.2235664989034003 / 3.2670938254953366
    pred, groups = thirty_groups()
    assert m.mnce(pred, groups) == pytest.approx(0.9866770503337666, rel=1e-12)
    # cluster 1 holds group 0 only -> H(G|C=1) = 0
    assert m.mnce([0, 0, 1, 1, 1], [0, 1, 0, 0, 0]) == 0.0


def test_f_beta():
    # 2 * 0.5 * 0.8 / (0.5 + 0.8) = 0.8 / 1.3
    assert m.f_beta(0.5, 0.8) == pytest.approx(0.6153846153846154, rel=1e-12)
    # beta = 2: 5 * 0.5 * 0.8 / (4 * 0.5 + 0.8) = 2 / 2.8
    assert m.f_beta(0.5, 0.8, beta=2) == pytest.approx(0.7142857142857143, rel=1e-12)
    assert m.f_beta(0.0, 0.0) == 0.0
    assert m.f_beta(0.9, 0.0) == 0.0


# ---- ACC, NMI, ARI -----------------------------------------------------------

def test_accuracy_more_clusters_than_classes():
    # cluster x class [[3, 0], [1, 4], [0, 2]]: best matching c0->0, c1->1 = 3 + 4;
    # cluster 2 stays unmatched -> 7/10
    y_true = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    y_pred = [0, 0, 0, 1, 1, 1, 1, 1, 2, 2]
    assert m.clustering_accuracy(y_true, y_pred) == pytest.approx(0.7, rel=1e-12)
    # Swapped roles: 3 classes vs 2 clusters, same matching
    assert m.clustering_accuracy(y_pred, y_true) == pytest.approx(0.7, rel=1e-12)


def test_accuracy_is_permutation_invariant():
    assert m.clustering_accuracy([0, 0, 1, 1, 2], [7, 7, 3, 3, 5]) == 1.0


def test_nmi_by_hand_and_against_sklearn():
    # class x cluster [[2, 0], [1, 1]]: I = 1/2 ln(4/3) + 1/4 ln(2/3) + 1/4 ln 2 = 0.21576155433883565
    # H(Y) = ln 2 = 0.6931471805599453, H(C) = -(3/4 ln 3/4 + 1/4 ln 1/4) = 0.5623351446188083
    y_true, y_pred = [0, 0, 1, 1], [0, 0, 0, 1]
    # arithmetic: I / ((H(Y) + H(C)) / 2); geometric: I / sqrt(H(Y) H(C))
    assert m.nmi(y_true, y_pred) == pytest.approx(0.3437110184854508, rel=1e-12)
    assert m.nmi(y_true, y_pred, average="geometric") == pytest.approx(0.3455920299442113, rel=1e-12)
    for average in ("arithmetic", "geometric"):
        expected = normalized_mutual_info_score(y_true, y_pred, average_method=average)
        assert abs(m.nmi(y_true, y_pred, average=average) - expected) <= 1e-12


def test_ari_by_hand():
    # [0,0,1,1] vs [0,1,0,1]: sum C(n_ij, 2) = 0, expected = 2 * 2 / 6 = 2/3, max = 2;
    # (0 - 2/3) / (2 - 2/3) = -0.5
    assert m.ari([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5, rel=1e-12)
    # [0,0,1,2] vs [0,0,1,1]: index 1, expected 1 * 2 / 6 = 1/3, max 3/2 -> (2/3) / (7/6) = 4/7
    assert m.ari([0, 0, 1, 2], [0, 0, 1, 1]) == pytest.approx(4 / 7, rel=1e-12)


def test_nmi_ari_match_sklearn_on_random_labelings():
    rng = np.random.default_rng(0)
    for _ in range(40):
        n = int(rng.integers(1, 200))
        y_true = rng.integers(-2, int(rng.integers(-1, 6)), n)
        y_pred = rng.integers(0, int(rng.integers(1, 8)), n) * 3
        for average in ("arithmetic", "geometric"):
            expected = normalized_mutual_info_score(y_true, y_pred, average_method=average)
            assert abs(m.nmi(y_true, y_pred, average=average) - expected) <= 1e-12
        assert abs(m.ari(y_true, y_pred) - adjusted_rand_score(y_true, y_pred)) <= 1e-12


# ---- The count-table kernel ----------------------------------------------------

def test_count_table_by_hand():
    table = m.count_table([7, 7, 3, 9, 3], [1, 0, 1, 1, 1])
    assert table.rows.uniques.tolist() == [3, 7, 9] and table.rows.codes.tolist() == [1, 1, 0, 2, 0]
    assert table.columns.uniques.tolist() == [0, 1]
    assert table.counts.tolist() == [[0, 2], [1, 1], [0, 1]]
    # Codes read as they are keep a level no sample has; weights sum instead of counting.
    fixed = m.count_table([7, 7, 3, 9, 3], m.label_codes([1, 0, 1, 1, 1], levels=3), weights=[1, 2, 3, 4, 5])
    assert fixed.counts.tolist() == [[0, 8, 0], [2, 1, 0], [0, 4, 0]]
    with pytest.raises(ValueError, match=re.escape(m.ERR_LEVELS.format(name="groups", levels=2, found=2))):
        m.label_codes([0, 2], levels=2, name="groups")
    with pytest.raises(ValueError, match=re.escape(m.ERR_LENGTH.format(first="a", second="b", n_first=2, n_second=1))):
        m.count_table([0, 1], [0])


def test_count_table_of_a_stack_of_weightings_is_one_table_per_weighting():
    rng = np.random.default_rng(3)
    a, b, w = rng.integers(0, 4, 50), rng.integers(10, 13, 50), rng.integers(0, 5, (6, 50))
    stacked = m.count_table(a, b, weights=w).counts
    assert stacked.shape == (6, 4, 3)
    for weights, table in zip(w, stacked):
        np.testing.assert_array_equal(table, m.count_table(a, b, weights=weights).counts)


def test_single_and_batched_paths_agree_on_random_tables():
    """A stack of tables (a bootstrap's, with classes or clusters emptied now and then) gives, table by table, exactly
    what the label-array functions give on the rows each table counts."""
    rng = np.random.default_rng(4)
    for _ in range(30):
        n_classes, n_clusters = rng.integers(1, 12, 2)
        stack = rng.integers(0, 6, (8, n_classes, n_clusters)) * (rng.random((8, n_classes, n_clusters)) < 0.6)
        stack[rng.integers(8), rng.integers(n_classes)] = 0
        stack[stack.sum((1, 2)) == 0, 0, 0] = 1
        floats = stack.astype(np.float64)  # resampled tables come as floats
        batched = {"acc": m.accuracy_from_tables(floats), "nmi": m.nmi_from_tables(floats),
                   "nmi_geometric": m.nmi_from_tables(floats, "geometric"), "ari": m.ari_from_tables(floats)}
        for i, table in enumerate(stack):
            y, c = np.nonzero(table)
            y, c = np.repeat(y, table[y, c]), np.repeat(c, table[y, c])
            single = {"acc": m.clustering_accuracy(y, c), "nmi": m.nmi(y, c),
                      "nmi_geometric": m.nmi(y, c, average="geometric"), "ari": m.ari(y, c)}
            assert {k: float(v[i]) for k, v in batched.items()} == single
    nmi_values, mnce_values = rng.random(20), rng.random(20)
    nmi_values[:3] = mnce_values[:2] = 0
    assert m.f_beta_from_scores(nmi_values, mnce_values, 2.0).tolist() == [
        m.f_beta(a, b, 2.0) for a, b in zip(nmi_values, mnce_values)]


def test_balance_per_cluster_names_the_cluster_that_sets_balance():
    clusters, counts, ratio = m.balance_per_cluster([5, 5, 2, 2, 2, 9], [0, 1, 1, 1, 0, 1], n_groups=3)
    assert clusters.tolist() == [2, 5, 9] and counts.tolist() == [[1, 2, 0], [1, 1, 0], [0, 1, 0]]
    assert ratio.tolist() == [0.0, 0.0, 0.0]
    clusters, counts, ratio = m.balance_per_cluster([5, 5, 2, 2, 2, 9], [0, 1, 1, 1, 0, 1], n_groups=2)
    assert ratio.tolist() == [0.5, 1.0, 0.0] and ratio.min() == m.balance([5, 5, 2, 2, 2, 9], [0, 1, 1, 1, 0, 1])


# ---- Classifier group metrics ------------------------------------------------

def test_group_accuracies_tiny_table():
    # (y, b): (0, 3) 2 of 3 right, (0, 7) 0 of 1, (1, 3) 2 of 2, (1, 7) 1 of 2
    y_true = [0, 0, 0, 0, 1, 1, 1, 1]
    bias = [3, 3, 3, 7, 3, 3, 7, 7]
    y_pred = [0, 0, 1, 1, 1, 1, 1, 0]
    assert m.group_accuracies(y_true, y_pred, bias) == {
        (0, 3): pytest.approx(2 / 3), (0, 7): 0.0, (1, 3): 1.0, (1, 7): 0.5,
    }
    # (2/3 + 0 + 1 + 1/2) / 4
    assert m.unbiased_accuracy(y_true, y_pred, bias) == pytest.approx(0.5416666666666666, rel=1e-12)
    assert m.worst_group_accuracy(y_true, y_pred, bias) == 0.0
    # 5 of 8 right overall
    assert m.average_accuracy(y_true, y_pred) == 0.625


def test_group_accuracies_only_groups_present():
    # (1, 7) is absent; groups (0, 3) 1/2, (0, 7) 1/1, (1, 3) 0/1 -> mean (1/2 + 1 + 0) / 3
    keys = m.group_accuracies([0, 0, 0, 1], [0, 1, 0, 0], [3, 3, 7, 3])
    assert set(keys) == {(0, 3), (0, 7), (1, 3)}
    assert m.unbiased_accuracy([0, 0, 0, 1], [0, 1, 0, 0], [3, 3, 7, 3]) == pytest.approx(0.5)


# ---- Probe -------------------------------------------------------------------

def test_probe_finds_a_linearly_encoded_group():
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(1000, 4))
    groups = (embedding[:, 0] + embedding[:, 1] > 0).astype(int)
    result = m.probe_accuracy(embedding, groups)
    assert result.accuracy >= 0.97
    assert (result.n_train, result.n_test) == (700, 300)


def test_probe_on_noise_is_at_chance():
    rng = np.random.default_rng(1)
    groups = np.repeat([0, 1], [700, 300])
    result = m.probe_accuracy(rng.normal(size=(1000, 3)), groups)
    # stratified held-out split keeps the 70/30 mix: 210 / 300
    assert result.majority_rate == pytest.approx(0.7)
    assert abs(result.accuracy - result.majority_rate) <= 0.05


def test_probe_subsamples_to_max_samples():
    rng = np.random.default_rng(2)
    result = m.probe_accuracy(rng.normal(size=(1000, 3)), rng.integers(0, 3, 1000), max_samples=200)
    # 200 samples, 30% held out
    assert (result.n_train, result.n_test) == (140, 60)


# ---- evaluate ----------------------------------------------------------------

def test_evaluate_matches_the_single_metrics():
    y_true = [0, 0, 0, 1, 1, 1, 1, 0]
    scores = m.evaluate(PRED_2X2, y_true, GROUPS_2X2, beta=2.0)
    assert set(scores) == {"acc", "nmi", "ari", "balance", "entropy", "mnce", "f_beta"}
    assert scores["acc"] == m.clustering_accuracy(y_true, PRED_2X2)
    assert abs(scores["nmi"] - normalized_mutual_info_score(y_true, PRED_2X2)) <= 1e-12
    assert abs(scores["ari"] - adjusted_rand_score(y_true, PRED_2X2)) <= 1e-12
    assert scores["balance"] == pytest.approx(1 / 3, rel=1e-12)
    assert scores["entropy"] == pytest.approx(0.6547629176520346, rel=1e-12)
    assert scores["mnce"] == pytest.approx(0.850009662242632, rel=1e-12)
    assert scores["f_beta"] == m.f_beta(scores["nmi"], scores["mnce"], beta=2.0)


def test_evaluate_leaves_out_what_it_cannot_compute():
    assert set(m.evaluate(PRED_2X2, groups=GROUPS_2X2)) == {"balance", "entropy", "mnce"}
    assert set(m.evaluate(PRED_2X2, y_true=GROUPS_2X2)) == {"acc", "nmi", "ari"}
    assert set(m.evaluate(PRED_2X2, GROUPS_2X2, np.zeros(8, int))) == {"acc", "nmi", "ari"}
    assert m.evaluate(PRED_2X2) == {}


def test_whole_float_labels_are_accepted():
    assert m.balance(PRED_2X2.astype(float), GROUPS_2X2.astype(np.float32)) == pytest.approx(1 / 3)


def test_metric_definitions_cover_every_key():
    keys = {"acc", "nmi", "ari", "balance", "entropy", "mnce", "f_beta", "entropy_per_group",
            "nmi_geometric", "probe_acc", "unbiased_acc", "worst_group_acc", "avg_acc"}
    assert keys <= set(m.METRIC_DEFINITIONS)
    for entry in m.METRIC_DEFINITIONS.values():
        assert isinstance(entry["label"], str) and entry["label"]
        assert isinstance(entry["definition"], str) and "\n" not in entry["definition"]
        assert isinstance(entry["higher_is_better"], bool)
        assert entry["range"].startswith("[")


# ---- Input errors ------------------------------------------------------------

def raises(message: str):
    """pytest.raises for a ValueError carrying exactly this message."""
    return pytest.raises(ValueError, match=re.escape(message))


def test_error_different_lengths():
    message = m.ERR_LENGTH.format(first="y_pred", second="groups", n_first=8, n_second=7)
    with raises(message):
        m.balance(PRED_2X2, GROUPS_2X2[:7])
    with raises(message):
        m.evaluate(PRED_2X2, groups=GROUPS_2X2[:7])
    with raises(m.ERR_LENGTH.format(first="y_true", second="bias", n_first=2, n_second=3)):
        m.group_accuracies([0, 1], [0, 1], [0, 1, 1])
    with raises(m.ERR_LENGTH.format(first="embedding", second="groups", n_first=3, n_second=2)):
        m.probe_accuracy(np.zeros((3, 2)), [0, 1])


def test_error_empty():
    with raises(m.ERR_EMPTY.format(name="y_true")):
        m.nmi([], [])
    with raises(m.ERR_EMPTY.format(name="embedding")):
        m.probe_accuracy(np.zeros((0, 2)), [])


def test_error_nan_and_infinite():
    with raises(m.ERR_NAN.format(name="y_pred")):
        m.evaluate([0, np.nan, 1])
    with raises(m.ERR_NAN.format(name="groups")):
        m.mnce([0, 1], [0, np.inf])
    with raises(m.ERR_NAN.format(name="embedding")):
        m.probe_accuracy([[0.0], [np.nan]], [0, 1])


def test_error_non_integer_labels():
    with raises(m.ERR_NOT_INTEGER.format(name="y_pred", found="fractional values such as 0.5")):
        m.ari([0, 1], [0, 0.5])
    with raises(m.ERR_NOT_INTEGER.format(name="groups", found="dtype <U1")):
        m.entropy([0, 1], ["a", "b"])


def test_error_not_1d():
    with raises(m.ERR_NOT_1D.format(name="y_pred", shape=(2, 2))):
        m.balance(np.zeros((2, 2), int), [0, 1, 0, 1])
    with raises(m.ERR_EMBEDDING_SHAPE.format(shape=(4,))):
        m.probe_accuracy(np.zeros(4), [0, 1, 0, 1])


def test_error_single_group():
    message = m.ERR_SINGLE_GROUP.format(name="groups", group=4)
    for fn in (m.balance, m.entropy, m.mnce):
        with raises(message):
            fn([0, 1, 2], [4, 4, 4])
    with raises(message):
        m.balance_ceiling([4, 4])
    with raises(message):
        m.probe_accuracy(np.zeros((3, 1)), [4, 4, 4])


def test_error_bad_parameters():
    with raises(m.ERR_AVERAGE.format(average="max")):
        m.nmi([0, 1], [0, 1], average="max")
    with raises(m.ERR_AVERAGE.format(average="max")):
        m.nmi_from_tables(np.ones((2, 2)), average="max")
    for beta in (0, -1.0, float("nan"), "2"):
        with raises(m.ERR_BETA.format(beta=beta)):
            m.f_beta(0.5, 0.5, beta=beta)
    with raises(m.ERR_BETA.format(beta=0)):
        m.evaluate(PRED_2X2, beta=0)
    with raises(m.ERR_SCORE.format(name="nmi_value", value=91.8)):
        m.f_beta(91.8, 0.5)
    with raises(m.ERR_SCORE.format(name="mnce_value", value=float("nan"))):
        m.f_beta(0.5, float("nan"))


def test_error_probe_split():
    with raises(m.ERR_TEST_SIZE.format(test_size=1.0)):
        m.probe_accuracy(np.zeros((4, 1)), [0, 0, 1, 1], test_size=1.0)
    with raises(m.ERR_PROBE_GROUP_SIZE.format(group=9)):
        m.probe_accuracy(np.zeros((4, 1)), [0, 0, 0, 9])
    with raises(m.ERR_PROBE_TOO_FEW.format(
        max_samples=4, test_size=0.3, n_train=3, n_test=1, n_groups=2,
    )):
        m.probe_accuracy(np.zeros((10, 1)), [0] * 5 + [1] * 5, max_samples=4)


# Two groups of four samples, two clusters. Group 0's clusters differ in feature 0 only, group 1's in feature 1 only:
# fair by counts (each cluster holds two of each group) but meaning different things.
PROFILE_X = np.array([[0, 0], [0, 1], [2, 0], [2, 1],   # group 0: cluster 0 at x0 = 0, cluster 1 at x0 = 2
                      [0, 0], [1, 0], [0, 2], [1, 2]],  # group 1: cluster 0 at x1 = 0, cluster 1 at x1 = 2
                     dtype=float)
PROFILE_G = [0, 0, 0, 0, 1, 1, 1, 1]
PROFILE_C = [0, 0, 1, 1, 0, 0, 1, 1]


def test_cluster_profiles_hand_case():
    # Group 0, feature 0: cluster 0 mean 0, the others 2, population sd of (0, 0, 2, 2) = 1 → d = −2; feature 1: means
    # 0.5 and 0.5 → 0. Group 1 the same with the features swapped.
    d = m.cluster_profiles(PROFILE_X, PROFILE_C, PROFILE_G)
    assert d.tolist() == [[[-2.0, 0.0], [2.0, 0.0]], [[0.0, -2.0], [0.0, 2.0]]]


def test_profile_agreement_tells_same_from_different_meanings():
    # Different features in the two groups: cos((−2, 0), (0, −2)) = 0, though MNCE is 1.
    assert m.mnce(PROFILE_C, PROFILE_G) == pytest.approx(1.0)
    agreement, per_cluster = m.profile_agreement(PROFILE_X, PROFILE_C, PROFILE_G)
    assert agreement == pytest.approx(0.0) and per_cluster.tolist() == [0.0, 0.0]
    # Group 1 split on feature 0 as group 0 is, at three times the scale: d is in each group's sd, so cos = 1.
    same = PROFILE_X.copy()
    same[4:] = [[0, 0], [0, 1], [6, 0], [6, 1]]
    assert m.profile_agreement(same, PROFILE_C, PROFILE_G)[0] == pytest.approx(1.0)
    # Cluster labels swapped in group 1 (cluster 0 = high x0 there): opposite meanings, cos = −1.
    swapped = [0, 0, 1, 1, 1, 1, 0, 0]
    assert m.profile_agreement(same, swapped, PROFILE_G)[0] == pytest.approx(-1.0)


def test_profile_agreement_leaves_out_undefined_profiles_and_weighs_by_size():
    # Three clusters; cluster 2 holds group 0 only (its group-1 profile is undefined), so only clusters 0 and 1 count.
    x = np.vstack([PROFILE_X, [[5.0, 5.0]]])
    clusters, groups = PROFILE_C + [2], PROFILE_G + [0]
    d = m.cluster_profiles(x, clusters, groups)
    assert np.isnan(d[1, 2]).all() and np.isfinite(d[0, 2]).all()
    agreement, per_cluster = m.profile_agreement(x, clusters, groups)
    assert np.isnan(per_cluster[2]) and np.isfinite(agreement)
    # One feature, three clusters. Group 0: clusters 0, 0, 1, 2 at 0, 0, 1, 2; group 1: at 0, 0, 2, 0. Clusters 0
    # (below the rest in both) and 1 (above in both) agree, cos 1; cluster 2 sits above the rest in group 0 and below
    # in group 1, cos −1. Sizes 4, 2, 2: agreement (4 + 2 − 2) / 8 = 0.5.
    x = np.array([[0.0], [0.0], [1.0], [2.0], [0.0], [0.0], [2.0], [0.0]])
    agreement, per_cluster = m.profile_agreement(x, [0, 0, 1, 2] * 2, [0] * 4 + [1] * 4)
    assert per_cluster.tolist() == [pytest.approx(1.0), pytest.approx(1.0), pytest.approx(-1.0)]
    assert agreement == pytest.approx(0.5)


def test_profile_agreement_is_nan_without_a_comparable_cluster_and_checks_its_input():
    # Each cluster holds a single group: no cluster has a profile in two groups.
    agreement, per_cluster = m.profile_agreement([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1], [0, 0, 1, 1])
    assert np.isnan(agreement) and np.isnan(per_cluster).all()
    with pytest.raises(ValueError, match="embedding must be a 2-D array"):
        m.profile_agreement(np.zeros(8), PROFILE_C, PROFILE_G)
    with pytest.raises(ValueError, match="different lengths"):
        m.profile_agreement(PROFILE_X[:7], PROFILE_C, PROFILE_G)
    with pytest.raises(ValueError, match="NaN or infinite"):
        m.profile_agreement(np.where(PROFILE_X == 2, np.nan, PROFILE_X), PROFILE_C, PROFILE_G)
