"""A census-like synthetic table (in the spirit of UCI Adult) for testing and benchmarking the methods on tabular data.

    from tests.tabular_data import census_like, feature_columns, save_upload
    table = census_like(n=4000, seed=0)          # mixed types: 6 numeric, 8 categorical (strings), sex, income
    meta = save_upload(n=4000, seed=0)           # saved as upload 'census': the upload one-hot encodes the strings

What it models (the shares are Adult's, rounded; nothing here is fitted to real records):
- sex: Male 2/3, Female 1/3; the sensitive attribute.
- relationship and marital_status follow sex and age: a married man is a Husband, a married woman a Wife (as in
  Adult, where "relationship" all but names the sex of married people); women are more often Unmarried (single
  parents), Divorced or Widowed. Married women (Wife) are rarer than in Adult (about 3 % of women, not 15 %), and
  married women often work part-time: that makes the Husband cluster k-means finds almost all men.
- a college stratum (35 %, independent of sex): four more years of school (little noise, so it shows as a step in
  education_num), occupations tilted toward the prestigious ones within each sex, more government and incorporated
  self-employed work, more capital gains, higher income. It is the fair structure a fair clustering can find: the
  split education_num ≥ 13 has MNCE ≈ 0.99 and a higher ACC against income than k-means' Husband split.
- occupation (14 levels) is strongly sex-segregated (Craft-repair, Transport-moving, Farming-fishing, Protective-serv
  mostly men; Adm-clerical, Priv-house-serv, Other-service mostly women), and hours_per_week depend on sex and
  occupation; education_num on the stratum and the occupation.
- capital_gain: ~90 % zeros, the rest log-normal with a few top-coded 99,999s (a heavy tail, as in Adult);
  capital_loss: ~95 % zeros; fnlwgt: log-normal around 190,000 (big numbers, independent of everything, as in Adult).
- income ">50K" (about a quarter) from a logistic model of education, age, marriage, hours, capital gain, occupation
  and the stratum.
- missing: that share of rows get NaN ("?" in Adult) in workclass and occupation (together, as in Adult), and
  half that share in native_region.

The sex-linked structure is strong enough that plain k-means on the z-scored, one-hot table is unfair (MNCE < 0.3):
its clusters split married men (Husband) from everyone else. tests/unit/test_tabular_methods.py checks it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

NUMERIC = ("age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week")
CATEGORICAL = ("workclass", "education", "marital_status", "occupation", "relationship", "race", "native_region",
               "age_band")
SENSITIVE, CLASS = "sex", "income"

# occupation: (share among men, share among women, prestige used for education and income)
OCCUPATIONS = {
    "Craft-repair": (0.18, 0.02, 0.0), "Exec-managerial": (0.14, 0.10, 1.0), "Prof-specialty": (0.12, 0.16, 1.2),
    "Sales": (0.12, 0.11, 0.3), "Machine-op-inspct": (0.07, 0.05, -0.4), "Transport-moving": (0.07, 0.01, -0.2),
    "Other-service": (0.06, 0.17, -0.9), "Adm-clerical": (0.06, 0.25, -0.2), "Handlers-cleaners": (0.06, 0.01, -0.8),
    "Farming-fishing": (0.05, 0.005, -0.7), "Tech-support": (0.03, 0.035, 0.6), "Protective-serv": (0.03, 0.005, 0.2),
    "Priv-house-serv": (0.002, 0.02, -1.2), "Armed-Forces": (0.001, 0.0003, 0.0),
}
WORKCLASS = {"Private": 0.74, "Self-emp-not-inc": 0.08, "Local-gov": 0.065, "State-gov": 0.04,
             "Self-emp-inc": 0.035, "Federal-gov": 0.03, "Without-pay": 0.01}
WORKCLASS_COLLEGE = {"Private": 0.52, "Local-gov": 0.14, "State-gov": 0.10, "Federal-gov": 0.06,
                     "Self-emp-inc": 0.10, "Self-emp-not-inc": 0.08}
EDUCATION = {  # education: its years (education_num), as in Adult
    "Preschool": 1, "1st-4th": 2, "5th-6th": 3, "7th-8th": 4, "9th": 5, "10th": 6, "11th": 7, "12th": 8,
    "HS-grad": 9, "Some-college": 10, "Assoc-voc": 11, "Assoc-acdm": 12, "Bachelors": 13, "Masters": 14,
    "Prof-school": 15, "Doctorate": 16,
}
RACE = {"White": 0.85, "Black": 0.096, "Asian-Pac-Islander": 0.032, "Amer-Indian-Eskimo": 0.01, "Other": 0.012}
REGION = {"United-States": 0.90, "Latin-America": 0.045, "Asia": 0.022, "Europe": 0.018, "Caribbean": 0.01,
          "Other": 0.005}
COLLEGE_SHARE = 0.35  # the college stratum's share of the population, independent of sex


def _choice(rng: np.random.Generator, table: dict, n: int) -> np.ndarray:
    names = np.array(list(table))
    p = np.array(list(table.values()), dtype=float)
    return names[rng.choice(len(names), size=n, p=p / p.sum())]


def census_like(n: int = 4000, seed: int = 0, missing: float = 0.0) -> pd.DataFrame:
    """n rows of a census-like table: numeric and string columns, `sex` (sensitive) and `income` (class).

    missing: share of rows with NaN in workclass and occupation (and half that share in native_region)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 0.0 <= missing < 1.0:
        raise ValueError(f"missing must lie in [0, 1), got {missing}")
    rng = np.random.default_rng(seed)
    female = rng.random(n) < 1 / 3
    sex = np.where(female, "Female", "Male")
    age = np.clip(np.round(17 + rng.gamma(4.0, 5.2, n)), 17, 90).astype(int)

    # Marriage: most likely in mid life; about 64 % of men (Adult: 60 %) and 3 % of women (Adult: 15 %), so that the
    # married cluster is the men's (see the module's docstring).
    mid_life = np.exp(-((age - 45) / 14.0) ** 2)
    married = rng.random(n) < np.where(female, 0.01 + 0.05 * mid_life, 0.25 + 0.70 * mid_life)
    never = ~married & (rng.random(n) < np.clip(1.4 - age / 40.0, 0.05, 0.95))
    rest = ~married & ~never
    u = rng.random(n)
    marital = np.where(married, np.where(u < 0.995, "Married-civ-spouse", "Married-AF-spouse"), "Never-married")
    later = np.where(female,
                     np.select([u < 0.55, u < 0.75, u < 0.95], ["Divorced", "Widowed", "Separated"], "Married-spouse-absent"),
                     np.select([u < 0.70, u < 0.80, u < 0.95], ["Divorced", "Widowed", "Separated"], "Married-spouse-absent"))
    marital = np.where(rest, later, marital)
    widow_age = rest & (age > 60) & (rng.random(n) < np.where(female, 0.6, 0.3))
    marital = np.where(widow_age, "Widowed", marital)

    v = rng.random(n)
    single = np.where(age < 25, np.where(v < 0.55, "Own-child", np.where(v < 0.9, "Not-in-family", "Other-relative")),
                      np.where(female,
                               np.where(v < 0.45, "Unmarried", np.where(v < 0.9, "Not-in-family", "Other-relative")),
                               np.where(v < 0.12, "Unmarried", np.where(v < 0.9, "Not-in-family", "Other-relative"))))
    relationship = np.where(married, np.where(female, "Wife", "Husband"), single)

    # A socio-economic stratum independent of sex: the college-educated, white-collar share of the population. Within
    # each sex it tilts occupations toward the prestigious ones (which stay sex-segregated) and adds years of school.
    college = rng.random(n) < COLLEGE_SHARE
    names = np.array(list(OCCUPATIONS))
    shares = np.array([OCCUPATIONS[o][:2] for o in names])  # occupations × (men, women)
    prestige_of = np.array([OCCUPATIONS[o][2] for o in names])
    drawn = np.empty(n, dtype=int)  # each row's occupation, as an index into names
    for is_female in (False, True):
        for is_college in (False, True):
            rows = np.flatnonzero((female == is_female) & (college == is_college))
            p = shares[:, int(is_female)] * np.exp((2.0 if is_college else -1.0) * prestige_of)
            drawn[rows] = rng.choice(len(names), len(rows), p=p / p.sum())
    occupation, prestige = names[drawn], prestige_of[drawn]

    # Education follows the stratum and the occupation: years ~ 9 + 4·college + 0.5·prestige + noise, snapped to
    # Adult's 16 levels. The noise is small: with σ = 1.5 the stratum blurred into the rest and, on some data seeds,
    # k-means' best split was the stratum itself (fair), not the sex-linked one.
    years = np.clip(np.round(9.0 + 4.0 * college + 0.5 * prestige + rng.normal(0, 0.5, n)), 1, 16).astype(int)
    by_years = {v: k for k, v in EDUCATION.items()}
    education = np.array([by_years[y] for y in years])
    workclass = np.where(college, _choice(rng, WORKCLASS_COLLEGE, n), _choice(rng, WORKCLASS, n))
    self_employed = np.isin(occupation, ["Farming-fishing", "Craft-repair", "Exec-managerial"]) & (rng.random(n) < 0.15)
    workclass = np.where(self_employed, "Self-emp-not-inc", workclass)
    race = _choice(rng, RACE, n)
    region = _choice(rng, REGION, n)
    bands = np.array(["17-24", "25-34", "35-44", "45-54", "55-64", "65+"])
    age_band = bands[np.digitize(age, [25, 35, 45, 55, 65])]

    # Hours: men work longer; part-time (around 20 h) common among women and the young; long hours for executives.
    part_time = rng.random(n) < np.where(female, 0.28, 0.08) + np.where(age < 25, 0.25, 0.0) + 0.4 * (married & female)
    hours = np.where(part_time, rng.normal(22, 6, n), rng.normal(np.where(female, 39, 45), 7, n))
    hours += np.where(np.isin(occupation, ["Exec-managerial", "Farming-fishing", "Transport-moving"]), 5, 0)
    hours = np.clip(np.round(hours), 1, 99).astype(int)

    # Heavy tails: capital gains mostly zero, then log-normal, a few top-coded at 99,999 (Adult's cap).
    gain = np.where(rng.random(n) < 0.05 + 0.04 * married + 0.08 * college, np.round(np.exp(rng.normal(8.3, 1.0, n))), 0.0)
    gain = np.where((gain > 0) & (rng.random(n) < 0.06), 99999.0, np.minimum(gain, 99999.0)).astype(int)
    loss = np.where((gain == 0) & (rng.random(n) < 0.047), np.round(rng.normal(1870, 360, n)), 0.0)
    loss = np.clip(loss, 0, 4356).astype(int)
    fnlwgt = np.round(np.exp(rng.normal(12.05, 0.5, n))).astype(int)

    # Income: a logistic model of the features (about 24 % ">50K", as in Adult).
    logit = (-8.4 + 0.33 * years + 0.045 * np.minimum(age, 60) + 2.0 * married + 0.03 * (hours - 40)
             + 0.35 * prestige + 1.2 * college + 2.5 * (gain > 5000) - 0.3 * female)
    income = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), ">50K", "<=50K")

    table = pd.DataFrame({
        "age": age, "workclass": workclass, "fnlwgt": fnlwgt, "education": education, "education_num": years,
        "marital_status": marital, "occupation": occupation, "relationship": relationship, "race": race,
        "sex": sex, "capital_gain": gain, "capital_loss": loss, "hours_per_week": hours, "native_region": region,
        "age_band": age_band, "income": income,
    })
    if missing > 0:
        rows = rng.random(n) < missing
        table["workclass"] = table["workclass"].astype(object).where(~rows)
        table["occupation"] = table["occupation"].astype(object).where(~rows)
        table["native_region"] = table["native_region"].astype(object).where(~(rng.random(n) < missing / 2))
    return table


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The feature columns of a table: everything but `sex` and `income`."""
    return [c for c in frame.columns if c not in (SENSITIVE, CLASS)]


def save_upload(n: int = 4000, seed: int = 0, missing: float = 0.0, name: str = "census") -> dict:
    """Build the table and save it as upload `name` (under $FCLAB_HOME); returns its metadata (see save_as_upload)."""
    return save_as_upload(census_like(n, seed, missing), name)


def save_as_upload(table: pd.DataFrame, name: str = "census") -> dict:
    """Save a census-like table as upload `name` the way a user's would be: every column as it comes, categoricals
    one-hot encoded by the upload itself, rows with a missing value dropped; returns its metadata."""
    from dashboard_lib.data.upload import build_upload

    missing = "drop" if table.isna().to_numpy().any() else "refuse"
    return build_upload(table, feature_columns(table), SENSITIVE, CLASS, name=name, overwrite=True, missing=missing)
