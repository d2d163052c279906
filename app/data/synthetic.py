"""Synthetic Home Credit Default Risk data in the Kaggle layout (eight CSV files, seven tables).

Every client first gets hidden traits: a creditworthiness `q` (what the external scores measure,
noisily) and a payment behaviour `b` (higher = worse), partly correlated. The application row is
drawn from `q` and the demographic draws; the child tables (bureau, bureau_balance, previous
applications, POS, installments, credit cards) are drawn conditioned on `b` (late payments, days
past due, overdue bureau debt, refused applications). TARGET is a logistic function of the true
signals plus noise, so the child tables carry signal the application row does not.

Everything is vectorised numpy over blocks of clients; each block has its own random stream
(seed, block number), so the output is byte-identical for a given (seed, n_clients, test_share).
CSV text is built with Arrow compute kernels (floats keep a decimal point, like pandas writes:
"202500.0"; missing values are empty fields) and appended block by block, so memory stays bounded.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from app.data import KAGGLE_FILES as FILES
from app.data import SCHEMA_PATH, load_schema  # noqa: F401 (SCHEMA_PATH re-exported)

FIRST_CLIENT_ID = 100002
FIRST_BUREAU_ID = 5000000
FIRST_PREV_ID = 1000001
BLOCK_CLIENTS = 10_000
DAYS_ANOMALY = 365243
# logistic intercept, tuned so that about 8% of clients default
TARGET_INTERCEPT = -3.8


# --------------------------------------------------------------------------------------------
# column values and their CSV text


@dataclass
class F:
    """A float column: NaN is missing; `decimals` rounds, None keeps full precision."""

    values: np.ndarray
    decimals: int | None = 2


@dataclass
class C:
    """A categorical column: codes into labels, -1 is missing."""

    codes: np.ndarray
    labels: tuple[str, ...]


_FRACTIONS: dict[int, pa.Array] = {}
_SIGN = pa.array(["", "-"])


def _fractions(decimals: int) -> pa.Array:
    if decimals not in _FRACTIONS:
        if decimals == 0:
            texts = [".0"]
        else:
            texts = ["." + (f"{k:0{decimals}d}".rstrip("0") or "0") for k in range(10**decimals)]
        _FRACTIONS[decimals] = pa.array(texts)
    return _FRACTIONS[decimals]


def _null_where(texts: pa.Array, missing: np.ndarray) -> pa.Array:
    if not missing.any():
        return texts
    return pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), texts)


def _float_text(col: F) -> pa.Array:
    x = np.asarray(col.values, dtype=np.float64)
    missing = ~np.isfinite(x)
    if col.decimals is None or col.decimals > 4:
        arr = pa.array(x, mask=missing)
        texts = pc.cast(arr, pa.string())
        integral = pa.array(np.floor(x) == x)
        texts = pc.if_else(integral, pc.binary_join_element_wise(texts, ".0", ""), texts)
        return texts
    scale = 10**col.decimals
    v = np.rint(np.where(missing, 0.0, x) * scale).astype(np.int64)
    neg = v < 0
    a = np.abs(v)
    whole = pc.cast(pa.array(a // scale), pa.string())
    frac = _fractions(col.decimals).take(pa.array(a % scale))
    sign = _SIGN.take(pa.array(neg.astype(np.int8)))
    return _null_where(pc.binary_join_element_wise(sign, whole, frac, ""), missing)


def _label_text(label: str) -> str:
    if any(ch in label for ch in ',"\n'):
        return '"' + label.replace('"', '""') + '"'
    return label


def _column_text(value: object, dtype: str, name: str) -> pa.Array:
    if dtype == "object":
        if not isinstance(value, C):
            raise TypeError(f"{name}: expected a categorical column")
        labels = pa.array([_label_text(s) for s in value.labels])
        codes = np.asarray(value.codes)
        return labels.take(pa.array(codes, mask=codes < 0))
    if dtype == "float64":
        col = value if isinstance(value, F) else F(np.asarray(value, dtype=np.float64), 0)
        return _float_text(col)
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integers, got {arr.dtype}")
    return pc.cast(pa.array(arr.astype(np.int64)), pa.string())


def _csv_bytes(columns: dict[str, object], schema: list[tuple[str, str]]) -> tuple[bytes, int]:
    """CSV text (no header) of the columns in schema order, and the row count."""
    texts = [_column_text(columns[name], dtype, name) for name, dtype in schema]
    n = len(texts[0])
    if n == 0:
        return b"", 0
    lines = pc.binary_join_element_wise(*texts, ",", null_handling="replace", null_replacement="")
    lines = pc.binary_join_element_wise(lines, "", "\n")
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset : lines.offset + n + 1]
    data = lines.buffers()[2]
    return data[int(offsets[0]) : int(offsets[-1])].to_pybytes(), n


# --------------------------------------------------------------------------------------------
# small sampling helpers


def _choice(rng: np.random.Generator, n: int, probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    cdf = np.cumsum(p / p.sum())
    cdf[-1] = 1.0
    return np.searchsorted(cdf, rng.random(n), side="right").astype(np.int16)


def _cat(rng: np.random.Generator, n: int, table: list[tuple[str, float]], missing: float = 0.0) -> C:
    labels = tuple(t[0] for t in table)
    codes = _choice(rng, n, [t[1] for t in table])
    if missing:
        codes[rng.random(n) < missing] = -1
    return C(codes, labels)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parent index of each child row, and the row's position within its parent (0-based)."""
    counts = np.asarray(counts, dtype=np.int64)
    parent = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    pos = np.arange(len(parent)) - starts[parent]
    return parent, pos


def _nan_where(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask, np.nan, x)


def _counts(rng: np.random.Generator, mean: np.ndarray, shape: float) -> np.ndarray:
    """Negative binomial counts (gamma-mixed Poisson) with the given means."""
    lam = rng.gamma(shape, 1.0, size=len(mean)) * (mean / shape)
    return rng.poisson(lam)


# --------------------------------------------------------------------------------------------
# Kaggle category levels (approximate frequencies of application_train / previous_application)

ORGANIZATIONS = [
    ("Business Entity Type 3", 22.1), ("XNA", 0.0), ("Self-employed", 12.5), ("Other", 5.4),
    ("Medicine", 3.6), ("Business Entity Type 2", 3.4), ("Government", 3.4), ("School", 2.9),
    ("Trade: type 7", 2.5), ("Kindergarten", 2.2), ("Construction", 2.2), ("Business Entity Type 1", 1.9),
    ("Transport: type 4", 1.8), ("Trade: type 3", 1.1), ("Industry: type 9", 1.1), ("Industry: type 3", 1.07),
    ("Security", 1.06), ("Housing", 0.96), ("Industry: type 11", 0.88), ("Military", 0.86), ("Bank", 0.81),
    ("Agriculture", 0.8), ("Police", 0.76), ("Transport: type 2", 0.72), ("Postal", 0.7),
    ("Security Ministries", 0.64), ("Trade: type 2", 0.62), ("Restaurant", 0.59), ("Services", 0.51),
    ("University", 0.43), ("Industry: type 7", 0.43), ("Transport: type 3", 0.39), ("Industry: type 1", 0.34),
    ("Hotel", 0.31), ("Electricity", 0.31), ("Industry: type 4", 0.29), ("Trade: type 6", 0.2),
    ("Industry: type 5", 0.19), ("Insurance", 0.19), ("Telecom", 0.19), ("Emergency", 0.18),
    ("Industry: type 2", 0.15), ("Advertising", 0.14), ("Realtor", 0.13), ("Culture", 0.12),
    ("Industry: type 12", 0.12), ("Trade: type 1", 0.11), ("Mobile", 0.1), ("Legal Services", 0.1),
    ("Cleaning", 0.08), ("Transport: type 1", 0.07), ("Industry: type 6", 0.04), ("Industry: type 10", 0.04),
    ("Religion", 0.03), ("Industry: type 13", 0.02), ("Trade: type 4", 0.02), ("Trade: type 5", 0.02),
    ("Industry: type 8", 0.01),
]  # fmt: skip
OCCUPATIONS = [
    ("Laborers", 26.1), ("Sales staff", 15.2), ("Core staff", 13.1), ("Managers", 10.1), ("Drivers", 8.8),
    ("High skill tech staff", 5.4), ("Accountants", 4.6), ("Medicine staff", 4.0), ("Security staff", 3.2),
    ("Cooking staff", 2.8), ("Cleaning staff", 2.2), ("Private service staff", 1.3), ("Low-skill Laborers", 1.0),
    ("Waiters/barmen staff", 0.64), ("Secretaries", 0.62), ("Realty agents", 0.35), ("HR staff", 0.27),
    ("IT staff", 0.25),
]  # fmt: skip
INCOME_TYPES = ("Working", "Commercial associate", "Pensioner", "State servant", "Unemployed", "Student",
                "Businessman", "Maternity leave")  # fmt: skip
SUITES = [("Unaccompanied", 81.2), ("Family", 13.1), ("Spouse, partner", 3.7), ("Children", 1.1),
          ("Other_B", 0.58), ("Other_A", 0.28), ("Group of people", 0.09)]  # fmt: skip
EDUCATION = [("Secondary / secondary special", 71.0), ("Higher education", 24.3), ("Incomplete higher", 3.3),
             ("Lower secondary", 1.24), ("Academic degree", 0.05)]  # fmt: skip
FAMILY = [("Married", 63.9), ("Single / not married", 14.8), ("Civil marriage", 9.7), ("Separated", 6.4),
          ("Widow", 5.2), ("Unknown", 0.001)]  # fmt: skip
HOUSING = [("House / apartment", 88.7), ("With parents", 4.8), ("Municipal apartment", 3.6),
           ("Rented apartment", 1.6), ("Office apartment", 0.85), ("Co-op apartment", 0.36)]  # fmt: skip
WEEKDAYS = [("TUESDAY", 17.5), ("WEDNESDAY", 16.9), ("MONDAY", 16.5), ("THURSDAY", 16.5), ("FRIDAY", 16.4),
            ("SATURDAY", 11.0), ("SUNDAY", 5.3)]  # fmt: skip
REGION_POP = np.array([0.00029, 0.000533, 0.00072, 0.001276, 0.001417, 0.002042, 0.002134, 0.00313, 0.003069,
                       0.003541, 0.003813, 0.004849, 0.004960, 0.005002, 0.005144, 0.006008, 0.006207, 0.006296,
                       0.006629, 0.006671, 0.007020, 0.007114, 0.007120, 0.007274, 0.008019, 0.008068, 0.008474,
                       0.008575, 0.008866, 0.009175, 0.009334, 0.009549, 0.009630, 0.009657, 0.010006, 0.010032,
                       0.010147, 0.010276, 0.010500, 0.010643, 0.010966, 0.011657, 0.011703, 0.014464, 0.014520,
                       0.015221, 0.016612, 0.018029, 0.018209, 0.018634, 0.018801, 0.018850, 0.019101, 0.019689,
                       0.020246, 0.020713, 0.022625, 0.022800, 0.024610, 0.025164, 0.026392, 0.028663, 0.030755,
                       0.031329, 0.032561, 0.035792, 0.04622, 0.072508])  # fmt: skip
BUILDING = [  # name, share present, beta a, beta b (normalised values in [0, 1])
    ("APARTMENTS", 0.4925, 1.4, 10.5), ("BASEMENTAREA", 0.4148, 1.2, 12.8),
    ("YEARS_BEGINEXPLUATATION", 0.5122, 40.0, 1.0),
    ("YEARS_BUILD", 0.335, 9.0, 3.0), ("COMMONAREA", 0.3013, 0.9, 19.0), ("ELEVATORS", 0.467, 0.6, 6.5),
    ("ENTRANCES", 0.4965, 2.0, 12.0), ("FLOORSMAX", 0.5024, 3.0, 10.0), ("FLOORSMIN", 0.3215, 3.0, 9.0),
    ("LANDAREA", 0.4062, 0.9, 12.0), ("LIVINGAPARTMENTS", 0.3164, 1.4, 11.0), ("LIVINGAREA", 0.498, 1.3, 10.0),
    ("NONLIVINGAPARTMENTS", 0.3057, 0.3, 35.0), ("NONLIVINGAREA", 0.4482, 0.5, 16.0),
]  # fmt: skip


def _block_rng(seed: int, block: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, block, stream]))


# --------------------------------------------------------------------------------------------
# application


@dataclass
class Clients:
    ids: np.ndarray
    q: np.ndarray  # creditworthiness (higher is better)
    b: np.ndarray  # payment behaviour (higher is worse)
    age: np.ndarray  # years
    pensioner: np.ndarray
    target: np.ndarray
    is_test: np.ndarray
    app: dict[str, object]


def _external_scores(rng: np.random.Generator, app: dict[str, object], q: np.ndarray) -> None:
    """EXT_SOURCE_1..3: noisy views of the client's creditworthiness q, each on its own scale."""
    n = len(q)
    # external scores: noisy views of q, each on its own scale
    ext_specs = [
        ("EXT_SOURCE_1", 0.70, 0.5, 0.564),
        ("EXT_SOURCE_2", 0.72, 0.55, 0.0021),
        ("EXT_SOURCE_3", 0.68, 0.45, 0.198),
    ]
    for col, rho, centre, miss in ext_specs:
        z = rho * q + np.sqrt(1 - rho**2) * rng.standard_normal(n)
        val = _sigmoid(1.35 * z + np.log(centre / (1 - centre)))
        app[col] = F(_nan_where(np.clip(val, 1e-4, 0.9999), rng.random(n) < miss), None)


def _building(rng: np.random.Generator, app: dict[str, object], n: int) -> None:
    """The building's normalised statistics (*_AVG, *_MODE, *_MEDI) and its kind, for about half the clients."""
    # building: one "has data" draw per client, column shares within; AVG/MODE/MEDI share missingness
    has_building = rng.random(n) < 0.53
    for name, share, a, bb in BUILDING:
        present = has_building & (rng.random(n) < share / 0.53)
        base = rng.beta(a, bb, n)
        avg = np.round(base, 4)
        mode = np.round(np.clip(base * rng.uniform(0.9, 1.1, n), 0, 1), 4)
        medi = np.round(np.clip(base * rng.uniform(0.97, 1.03, n), 0, 1), 4)
        app[f"{name}_AVG"] = F(_nan_where(avg, ~present), 4)
        app[f"{name}_MODE"] = F(_nan_where(mode, ~present), 4)
        app[f"{name}_MEDI"] = F(_nan_where(medi, ~present), 4)
    app["FONDKAPREMONT_MODE"] = _cat(
        rng, n, [("reg oper account", 24.0), ("reg oper spec account", 3.9), ("not specified", 1.8),
                 ("org spec account", 1.8)])  # fmt: skip
    app["FONDKAPREMONT_MODE"].codes[~has_building | (rng.random(n) < 0.4)] = -1
    app["HOUSETYPE_MODE"] = _cat(rng, n, [("block of flats", 49.0), ("specific housing", 0.5), ("terraced house", 0.4)])
    app["HOUSETYPE_MODE"].codes[~has_building | (rng.random(n) < 0.06)] = -1
    total_area = np.round(rng.beta(1.4, 11.0, n), 4)
    app["TOTALAREA_MODE"] = F(_nan_where(total_area, ~has_building | (rng.random(n) < 0.02)), 4)
    app["WALLSMATERIAL_MODE"] = _cat(
        rng, n, [("Panel", 21.5), ("Stone, brick", 21.1), ("Block", 3.0), ("Wooden", 1.7), ("Mixed", 0.75),
                 ("Monolithic", 0.58), ("Others", 0.53)])  # fmt: skip
    app["WALLSMATERIAL_MODE"].codes[~has_building | (rng.random(n) < 0.07)] = -1
    app["EMERGENCYSTATE_MODE"] = _cat(rng, n, [("No", 98.5), ("Yes", 1.5)])
    app["EMERGENCYSTATE_MODE"].codes[~has_building & (rng.random(n) < 0.99)] = -1


def _social_circle_documents_and_enquiries(rng: np.random.Generator, app: dict[str, object], b: np.ndarray) -> None:
    """Defaults in the social circle, the last phone change, the documents given and the credit bureau enquiries."""
    n = len(b)
    social_missing = rng.random(n) < 0.0033
    obs30 = rng.negative_binomial(0.5, 0.26, n).astype(np.float64)
    obs60 = obs30 + (rng.random(n) < 0.05)
    def30 = np.minimum(rng.binomial(obs30.astype(np.int64), np.clip(0.06 + 0.03 * b, 0.005, 0.5)), obs30)
    def60 = np.minimum(def30 + (rng.random(n) < 0.02), obs60)
    app["OBS_30_CNT_SOCIAL_CIRCLE"] = F(_nan_where(obs30, social_missing), 0)
    app["DEF_30_CNT_SOCIAL_CIRCLE"] = F(_nan_where(def30, social_missing), 0)
    app["OBS_60_CNT_SOCIAL_CIRCLE"] = F(_nan_where(obs60, social_missing), 0)
    app["DEF_60_CNT_SOCIAL_CIRCLE"] = F(_nan_where(def60, social_missing), 0)
    phone = -np.floor(rng.exponential(960, n)).clip(0, 4292)
    app["DAYS_LAST_PHONE_CHANGE"] = F(_nan_where(phone, rng.random(n) < 0.000003), 0)
    doc_p = {2: 4e-5, 3: 0.71, 4: 8e-5, 5: 0.015, 6: 0.088, 7: 2e-4, 8: 0.081, 9: 0.0039, 10: 2e-5, 11: 0.0039,
             12: 7e-6, 13: 0.0035, 14: 0.0029, 15: 0.0012, 16: 0.0099, 17: 2.7e-4, 18: 0.0081, 19: 6e-4,
             20: 5e-4, 21: 3.3e-4}  # fmt: skip
    for k, p in doc_p.items():
        app[f"FLAG_DOCUMENT_{k}"] = (rng.random(n) < p).astype(np.int64)
    req_missing = rng.random(n) < 0.135
    for col, lam in [("HOUR", 0.0064), ("DAY", 0.007), ("WEEK", 0.034), ("MON", 0.27), ("QRT", 0.27)]:
        app[f"AMT_REQ_CREDIT_BUREAU_{col}"] = F(_nan_where(rng.poisson(lam, n).astype(np.float64), req_missing), 0)
    year = rng.negative_binomial(1.3, 1.3 / (1.3 + 1.9 * np.exp(0.1 * b)), n).astype(np.float64)
    app["AMT_REQ_CREDIT_BUREAU_YEAR"] = F(_nan_where(year, req_missing), 0)


def _clients(rng: np.random.Generator, ids: np.ndarray, test_share: float) -> Clients:
    n = len(ids)
    q = rng.standard_normal(n)
    b = -0.35 * q + np.sqrt(1 - 0.35**2) * rng.standard_normal(n)
    app: dict[str, object] = {"SK_ID_CURR": ids}

    revolving = rng.random(n) < 0.0952
    app["NAME_CONTRACT_TYPE"] = C(revolving.astype(np.int8), ("Cash loans", "Revolving loans"))
    gender = _choice(rng, n, [65.83, 34.17, 0.0015])
    app["CODE_GENDER"] = C(gender, ("F", "M", "XNA"))
    male = gender == 1
    own_car = rng.random(n) < np.where(male, 0.55, 0.23)
    app["FLAG_OWN_CAR"] = C(own_car.astype(np.int8), ("N", "Y"))
    app["FLAG_OWN_REALTY"] = C((rng.random(n) < 0.694).astype(np.int8), ("N", "Y"))

    # age and employment; pensioners carry the DAYS_EMPLOYED anomaly and ORGANIZATION_TYPE XNA
    age = np.where(rng.random(n) < 0.75, rng.uniform(21, 58, n), rng.uniform(50, 69, n))
    pensioner = (age > 52) & (rng.random(n) < np.clip((age - 53) / 10, 0, 0.95))
    unemployed = ~pensioner & (rng.random(n) < 0.0002)
    anomaly = pensioner | unemployed
    days_birth = -np.floor(age * 365.25).astype(np.int64) - rng.integers(0, 365, n)
    days_birth = np.clip(days_birth, -25229, -7489)
    age = -days_birth / 365.25
    work_years = np.maximum(age - 18.5, 0.1)
    emp_years = np.minimum(rng.exponential(6.0 + 0.1 * (age - 20), n), work_years)
    days_employed = -np.floor(emp_years * 365.25).astype(np.int64)
    days_employed = np.where(anomaly, DAYS_ANOMALY, np.minimum(days_employed, 0))
    app["DAYS_BIRTH"] = days_birth
    app["DAYS_EMPLOYED"] = days_employed

    income_kind = _choice(rng, n, [51.6, 23.3, 0.0, 7.06, 0.0, 0.006, 0.003, 0.002])
    income_kind = np.where(pensioner, 2, income_kind)
    income_kind = np.where(unemployed, 4, income_kind)
    app["NAME_INCOME_TYPE"] = C(income_kind.astype(np.int16), INCOME_TYPES)

    children = _choice(rng, n, [70.0, 19.9, 8.7, 1.2, 0.14, 0.03, 0.01])
    children = np.where(age > 55, np.minimum(children, 1), children).astype(np.int64)
    app["CNT_CHILDREN"] = children

    education = _cat(rng, n, EDUCATION)
    higher = (education.codes == 1) | (education.codes == 4)
    income = np.exp(np.log(139500) + 0.52 * rng.standard_normal(n) + 0.25 * higher + 0.1 * male - 0.2 * pensioner)
    income = np.maximum(np.round(income / 2250) * 2250, 25650.0)
    credit = np.exp(np.log(540000) + 0.62 * rng.standard_normal(n) + 0.35 * (np.log(income) - np.log(147150)))
    credit = np.where(revolving, np.round(credit / 4 / 22500) * 22500 + 45000, np.round(credit / 4500) * 4500 + 4500)
    goods = np.where(revolving, credit, np.round(credit / rng.uniform(1.0, 1.22, n) / 4500) * 4500)
    goods = _nan_where(goods, rng.random(n) < 0.0009)
    term = np.where(revolving, 20.0, rng.choice([10.0, 12.0, 15.0, 18.0, 20.0, 24.0, 30.0, 36.0], n))
    annuity = np.round(credit / term * rng.uniform(0.85, 1.25, n) * 2) / 2
    annuity = _nan_where(annuity, rng.random(n) < 0.00004)
    app["AMT_INCOME_TOTAL"] = F(income, 1)
    app["AMT_CREDIT"] = F(credit, 1)
    app["AMT_ANNUITY"] = F(annuity, 1)
    app["AMT_GOODS_PRICE"] = F(goods, 1)
    app["NAME_TYPE_SUITE"] = _cat(rng, n, SUITES, missing=0.0042)
    app["NAME_EDUCATION_TYPE"] = education
    family = _cat(rng, n, FAMILY)
    app["NAME_FAMILY_STATUS"] = family
    couple = (family.codes == 0) | (family.codes == 2)
    app["NAME_HOUSING_TYPE"] = _cat(rng, n, HOUSING)
    region_pop = REGION_POP[np.minimum(rng.beta(2.0, 1.6, n) * len(REGION_POP), len(REGION_POP) - 1).astype(int)]
    app["REGION_POPULATION_RELATIVE"] = F(region_pop, None)
    app["DAYS_REGISTRATION"] = F(-np.floor(rng.uniform(0, 1, n) ** 0.8 * (-days_birth - 6500).clip(0, 18000)), 0)
    app["DAYS_ID_PUBLISH"] = -np.floor(rng.uniform(0, 1, n) * np.minimum(-days_birth - 5000, 7200)).astype(np.int64)
    car_age = np.floor(rng.gamma(1.8, 6.5, n)).clip(0, 65)
    app["OWN_CAR_AGE"] = F(_nan_where(car_age, ~own_car), 0)
    app["FLAG_MOBIL"] = (rng.random(n) > 3e-6).astype(np.int64)
    app["FLAG_EMP_PHONE"] = (~anomaly).astype(np.int64)
    app["FLAG_WORK_PHONE"] = ((rng.random(n) < 0.24) & ~anomaly).astype(np.int64)
    app["FLAG_CONT_MOBILE"] = (rng.random(n) < 0.998).astype(np.int64)
    app["FLAG_PHONE"] = (rng.random(n) < 0.28).astype(np.int64)
    app["FLAG_EMAIL"] = (rng.random(n) < 0.057).astype(np.int64)
    occupation = _cat(rng, n, OCCUPATIONS)
    occupation.codes[anomaly | (rng.random(n) < 0.165)] = -1
    app["OCCUPATION_TYPE"] = occupation
    fam = (children + 1 + couple).astype(np.float64)
    app["CNT_FAM_MEMBERS"] = F(_nan_where(fam, rng.random(n) < 0.0000065), 0)
    rating = _choice(rng, n, [10.5, 73.8, 15.7]) + 1
    rating_city = np.clip(rating + (rng.random(n) < 0.03) * rng.choice([-1, 1], n), 1, 3)
    app["REGION_RATING_CLIENT"] = rating.astype(np.int64)
    app["REGION_RATING_CLIENT_W_CITY"] = rating_city.astype(np.int64)
    app["WEEKDAY_APPR_PROCESS_START"] = _cat(rng, n, WEEKDAYS)
    app["HOUR_APPR_PROCESS_START"] = np.clip(np.rint(rng.normal(12.1, 3.3, n)), 0, 23).astype(np.int64)
    for col, p in [("REG_REGION_NOT_LIVE_REGION", 0.015), ("REG_REGION_NOT_WORK_REGION", 0.051),
                   ("LIVE_REGION_NOT_WORK_REGION", 0.041), ("REG_CITY_NOT_LIVE_CITY", 0.078),
                   ("REG_CITY_NOT_WORK_CITY", 0.23), ("LIVE_CITY_NOT_WORK_CITY", 0.18)]:  # fmt: skip
        app[col] = (rng.random(n) < p) & ~(anomaly & (col.endswith("WORK_REGION") | col.endswith("WORK_CITY")))
        app[col] = app[col].astype(np.int64)
    org = _cat(rng, n, ORGANIZATIONS)
    org.codes[anomaly] = 1
    app["ORGANIZATION_TYPE"] = org

    _external_scores(rng, app, q)
    _building(rng, app, n)
    _social_circle_documents_and_enquiries(rng, app, b)

    # TARGET: logistic of the true signals (not of the noisy observed columns) plus noise
    credit_income = np.log(credit / income)
    goods_ratio = np.log(credit / np.where(np.isnan(goods), credit, goods))
    emp = np.where(anomaly, 0.0, np.log1p(emp_years))
    logit = (
        TARGET_INTERCEPT
        - 1.00 * q
        + 0.95 * b
        - 0.018 * (age - 43)
        - 0.20 * (emp - 1.6)
        + 0.18 * credit_income
        + 1.2 * goods_ratio
        + 0.25 * male
        - 0.25 * higher
        + 0.10 * (rating - 2)
        + 0.60 * rng.standard_normal(n)
    )
    target = (rng.random(n) < _sigmoid(logit)).astype(np.int64)
    app["TARGET"] = target
    is_test = rng.random(n) < test_share
    return Clients(ids, q, b, age, pensioner, target, is_test, app)


def _take(columns: dict[str, object], mask: np.ndarray) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, v in columns.items():
        if isinstance(v, F):
            out[name] = F(v.values[mask], v.decimals)
        elif isinstance(v, C):
            out[name] = C(v.codes[mask], v.labels)
        else:
            out[name] = np.asarray(v)[mask]
    return out


# --------------------------------------------------------------------------------------------
# bureau and bureau_balance


CREDIT_TYPES = [("Consumer credit", 72.9), ("Credit card", 23.4), ("Car loan", 1.6), ("Mortgage", 1.07),
                ("Microloan", 0.72), ("Loan for business development", 0.12), ("Another type of loan", 0.06),
                ("Unknown type of loan", 0.03), ("Loan for working capital replenishment", 0.027),
                ("Cash loan (non-earmarked)", 0.003), ("Real estate loan", 0.0016),
                ("Loan for the purchase of equipment", 0.0011),
                ("Loan for purchase of shares (margin lending)", 0.0002),
                ("Mobile operator loan", 0.0001), ("Interbank credit", 0.0001)]  # fmt: skip


def _bureau(rng: np.random.Generator, cl: Clients, next_id: int) -> tuple[dict, dict]:
    mean = 6.8 * np.clip(0.45 + 0.015 * (cl.age - 20), 0.4, 1.3) * np.exp(0.08 * cl.b)
    cnt = _counts(rng, mean, 1.4)
    parent, _pos = _expand(cnt)
    m = len(parent)
    b = cl.b[parent]
    ids = next_id + np.arange(m, dtype=np.int64)
    max_age_days = np.minimum((cl.age[parent] - 18) * 365, 2922).astype(np.int64)
    days_credit = -np.minimum(np.floor(rng.beta(1.0, 1.7, m) * 2922).astype(np.int64), max_age_days) - 1
    ctype = _cat(rng, m, CREDIT_TYPES)
    microloan = rng.random(m) < np.clip(0.004 * np.exp(0.6 * b), 0, 0.2)
    ctype.codes[microloan] = 4
    card = ctype.codes == 1
    duration = np.where(card, rng.choice([730, 1095, 1826, 31000], m), np.floor(rng.gamma(1.6, 420, m)) + 30)
    enddate = days_credit + duration
    # state: Closed / Active / Sold / Bad debt
    p_active = np.clip(np.where(enddate > 0, 0.75, 0.10) + 0.03 * b, 0.02, 0.97)
    active = rng.random(m) < p_active
    sold = ~active & (rng.random(m) < np.clip(0.004 * np.exp(0.9 * b), 0, 0.3))
    bad = sold & (rng.random(m) < 0.003)
    state = np.where(active, 0, np.where(bad, 3, np.where(sold, 2, 1))).astype(np.int16)
    closed = state == 1
    # behaviour: overdue days and amounts grow with b
    overdue_now = active & (rng.random(m) < _sigmoid(-6.0 + 1.3 * b))
    day_overdue = np.where(overdue_now, np.ceil(rng.exponential(25 + 20 * np.maximum(b, 0), m)), 0).astype(np.int64)
    amount = np.round(np.exp(rng.normal(11.6, 1.1, m)) / 50) * 50
    amount = np.where(ctype.codes == 3, amount * 4, amount)
    debt_share = np.where(active, rng.beta(2.0, 2.0 - np.clip(0.3 * b, -0.8, 0.9), m), 0.0)
    debt = np.round(amount * debt_share, 1)
    ever_late = rng.random(m) < _sigmoid(-1.8 + 1.0 * b)
    max_overdue = np.where(ever_late, np.round(amount * rng.beta(0.5, 20, m), 2), 0.0)
    max_overdue = _nan_where(max_overdue, rng.random(m) < 0.62)
    sum_overdue = np.where(overdue_now, np.round(debt * rng.beta(0.8, 6, m), 2), 0.0)
    limit = np.where(card & active, np.round(amount * rng.uniform(0, 1, m), 2), 0.0)
    limit = _nan_where(limit, rng.random(m) < 0.64)
    fact = np.where(
        closed | (state > 1), np.minimum(days_credit + np.floor(duration * rng.uniform(0.5, 1.1, m)), -1), np.nan
    )
    fact = np.where(np.isnan(fact), np.nan, np.maximum(fact, days_credit))
    enddate_out = _nan_where(enddate, rng.random(m) < 0.06)
    update = np.where(active, -np.floor(rng.exponential(25, m)), np.where(np.isnan(fact), days_credit, fact))
    update = np.clip(np.floor(np.maximum(update, days_credit)), -2922, 0).astype(np.int64)
    annuity = _nan_where(np.round(amount / np.maximum(duration / 30, 3), 1), rng.random(m) < 0.71)
    prolong = (rng.random(m) < 0.005 + 0.004 * np.maximum(b, 0)).astype(np.int64) * rng.integers(1, 3, m)
    bureau = {
        "SK_ID_CURR": cl.ids[parent],
        "SK_ID_BUREAU": ids,
        "CREDIT_ACTIVE": C(state, ("Active", "Closed", "Sold", "Bad debt")),
        "CREDIT_CURRENCY": _cat(
            rng, m, [("currency 1", 99.918), ("currency 2", 0.07), ("currency 3", 0.01), ("currency 4", 0.002)]
        ),  # fmt: skip
        "DAYS_CREDIT": days_credit,
        "CREDIT_DAY_OVERDUE": day_overdue,
        "DAYS_CREDIT_ENDDATE": F(enddate_out, 0),
        "DAYS_ENDDATE_FACT": F(fact, 0),
        "AMT_CREDIT_MAX_OVERDUE": F(max_overdue, 3),
        "CNT_CREDIT_PROLONG": prolong,
        "AMT_CREDIT_SUM": F(_nan_where(amount, rng.random(m) < 8e-6), 3),
        "AMT_CREDIT_SUM_DEBT": F(_nan_where(debt, rng.random(m) < 0.15), 3),
        "AMT_CREDIT_SUM_LIMIT": F(limit, 3),
        "AMT_CREDIT_SUM_OVERDUE": F(sum_overdue, 3),
        "CREDIT_TYPE": ctype,
        "DAYS_CREDIT_UPDATE": update,
        "AMT_ANNUITY": F(annuity, 3),
    }

    # bureau_balance: about half the credits report a monthly history (months 0 .. -(L-1))
    months_open = np.floor(-days_credit / 30.44).astype(np.int64) + 1
    has_hist = rng.random(m) < 0.445
    length = np.where(has_hist, np.minimum(months_open, 97), 0)
    bparent, bpos = _expand(length)
    k = len(bparent)
    month = -bpos
    closed_month = np.where(np.isnan(fact), 1, np.floor(np.nan_to_num(fact) / 30.44))
    bb_b = b[bparent]
    late = rng.random(k) < _sigmoid(-4.3 + 1.3 * bb_b)
    bucket = np.minimum(1 + np.floor(rng.exponential(0.35 + 0.25 * np.maximum(bb_b, 0), k)), 5).astype(np.int16)
    status = np.where(late, bucket, 0).astype(np.int16)
    status = np.where(rng.random(k) < 0.3, 7, status)  # X: unknown
    status = np.where(month > closed_month[bparent], 6, status)  # C: closed
    bb = {
        "SK_ID_BUREAU": ids[bparent],
        "MONTHS_BALANCE": month.astype(np.int64),
        "STATUS": C(status, ("0", "1", "2", "3", "4", "5", "C", "X")),
    }
    return bureau, bb


# --------------------------------------------------------------------------------------------
# previous applications and their monthly tables

LOAN_PURPOSES = [("Repairs", 1.42), ("Other", 0.94), ("Urgent needs", 0.5), ("Buying a used car", 0.17),
                 ("Building a house or an annex", 0.16), ("Everyday expenses", 0.14), ("Medicine", 0.13),
                 ("Payments on other loans", 0.12), ("Education", 0.09), ("Journey", 0.07),
                 ("Purchase of electronic equipment", 0.06), ("Buying a new car", 0.06),
                 ("Wedding / gift / holiday", 0.05), ("Buying a home", 0.05), ("Car repairs", 0.05),
                 ("Furniture", 0.04), ("Buying a holiday home / land", 0.03), ("Business development", 0.03),
                 ("Gasification / water supply", 0.02), ("Buying a garage", 0.01), ("Hobby", 0.003),
                 ("Money for a third person", 0.001), ("Refusal to name the goal", 0.001)]  # fmt: skip
GOODS = [("Mobile", 13.5), ("Consumer Electronics", 7.3), ("Computers", 6.3), ("Audio/Video", 6.0),
         ("Furniture", 3.2), ("Photo / Cinema Equipment", 1.5), ("Construction Materials", 1.5),
         ("Clothing and Accessories", 1.4), ("Auto Accessories", 0.45), ("Jewelry", 0.38), ("Homewares", 0.3),
         ("Medical Supplies", 0.23), ("Vehicles", 0.2), ("Sport and Leisure", 0.18), ("Gardening", 0.16),
         ("Other", 0.15), ("Office Appliances", 0.14), ("Tourism", 0.1), ("Medicine", 0.1), ("Direct Sales", 0.03),
         ("Fitness", 0.013), ("Additional Service", 0.008), ("Education", 0.006), ("Weapon", 0.005),
         ("Insurance", 0.004), ("House Construction", 0.001), ("Animals", 0.0001)]  # fmt: skip
CONTRACT_TYPES = ("Cash loans", "Consumer loans", "Revolving loans", "XNA")
PREV_STATUS = ("Approved", "Canceled", "Refused", "Unused offer")
PRODUCTS = ("Cash", "POS household with interest", "POS mobile with interest", "Cash X-Sell: middle",
            "Cash X-Sell: low", "Card Street", "POS industry with interest", "POS household without interest",
            "Card X-Sell", "Cash Street: high", "Cash X-Sell: high", "Cash Street: middle", "Cash Street: low",
            "POS mobile without interest", "POS other with interest", "POS industry without interest",
            "POS others without interest")  # fmt: skip
REJECT = ("XAP", "HC", "LIMIT", "SCO", "CLIENT", "SCOFR", "XNA", "VERIF", "SYSTEM")
CHANNELS = [("Credit and cash offices", 43.0), ("Country-wide", 29.7), ("Stone", 12.7), ("Regional / Local", 6.5),
            ("Contact center", 4.3), ("AP+ (Cash loan)", 3.4), ("Channel of corporate sales", 0.4),
            ("Car dealer", 0.03)]  # fmt: skip
SELLER_INDUSTRY = ("XNA", "Consumer electronics", "Connectivity", "Furniture", "Construction", "Clothing",
                   "Industry", "Auto technology", "Jewelry", "MLM partners", "Tourism")  # fmt: skip


class _Loans(NamedTuple):
    """The previous applications of a block's clients, as the columns the other tables are derived from."""

    m: int
    parent: np.ndarray
    b: np.ndarray
    ids: np.ndarray
    ctype: np.ndarray
    cash: np.ndarray
    consumer: np.ndarray
    revolving: np.ndarray
    refused: np.ndarray
    canceled: np.ndarray
    unused: np.ndarray
    status: np.ndarray
    approved: np.ndarray
    days_decision: np.ndarray
    app_amt: np.ndarray
    credit_amt: np.ndarray
    down: np.ndarray
    rate_down: np.ndarray
    goods: np.ndarray
    cnt_payment: np.ndarray
    annuity: np.ndarray
    first_due: np.ndarray
    last_1st: np.ndarray
    last_due: np.ndarray
    termination: np.ndarray
    first_drawing: np.ndarray
    sched_missing: np.ndarray


class _Instalments(NamedTuple):
    """The approved instalment loans (indices into the loans) and their schedule: shared by installments and POS."""

    li: np.ndarray
    k_term: np.ndarray
    fd: np.ndarray
    ld: np.ndarray
    n_inst: np.ndarray
    lb: np.ndarray


def _previous(rng: np.random.Generator, cl: Clients, next_id: int) -> tuple[dict, dict, dict, dict, int]:
    """previous_application, POS_CASH_balance, installments_payments, credit_card_balance and the number of previous
    applications, drawn in this order from one random stream (the order of draws is the data: keep it)."""
    loans = _previous_loans(rng, cl, next_id)
    prev = _previous_rows(rng, cl, loans)
    plan = _instalment_plan(loans)
    inst = _installments(rng, cl, loans, plan)
    pos = _pos_cash(rng, cl, loans, plan)
    cc = _credit_cards(rng, cl, loans)
    return prev, pos, inst, cc, loans.m


def _previous_loans(rng: np.random.Generator, cl: Clients, next_id: int) -> _Loans:
    """Each client's previous applications: contract type, decision, amounts, terms and payment schedule."""
    cnt = _counts(rng, 5.4 * np.exp(0.05 * cl.b), 1.6)
    parent, _pos = _expand(cnt)
    m = len(parent)
    b = cl.b[parent]
    q = cl.q[parent]
    ids = next_id + np.arange(m, dtype=np.int64)
    ctype = _choice(rng, m, [44.7, 43.7, 10.5, 0.02])
    cash, consumer, revolving = ctype == 0, ctype == 1, ctype == 2
    # decision: refused more often for bad behaviour / low creditworthiness
    p_refused = _sigmoid(-2.0 + 0.75 * b - 0.30 * q + 0.4 * cash)
    u = rng.random(m)
    refused = u < p_refused
    canceled = ~refused & (rng.random(m) < np.where(cash, 0.32, 0.12))
    unused = ~refused & ~canceled & consumer & (rng.random(m) < 0.05)
    status = np.where(refused, 2, np.where(canceled, 1, np.where(unused, 3, 0))).astype(np.int16)
    approved = status == 0

    days_decision = -np.floor(rng.beta(0.95, 2.2, m) * 2921).astype(np.int64) - 1
    card_limits = np.array([0, 45000, 67500, 90000, 135000, 180000, 225000], dtype=np.float64)
    cash_amt = np.round(np.exp(rng.normal(12.2, 0.75, m)) / 4500) * 4500
    consumer_amt = np.round(np.exp(rng.normal(10.9, 0.9, m)), 1)
    card_amt = rng.choice(card_limits, m) * (~canceled)
    app_amt = np.where(cash, cash_amt, np.where(consumer, consumer_amt, card_amt))
    app_amt = np.where(canceled & cash, 0.0, app_amt)
    credit_amt = np.where(
        consumer, np.round(app_amt * rng.uniform(0.85, 1.15, m), 1), app_amt * rng.choice([1.0, 1.0, 1.1], m)
    )
    credit_amt = np.round(credit_amt, 1)
    down = np.where(
        consumer & (rng.random(m) < 0.95),
        np.round(np.maximum(app_amt - credit_amt, 0) * rng.uniform(0, 1, m), 1),
        np.nan,
    )
    down = np.where(consumer & (rng.random(m) < 0.6), 0.0, down)
    rate_down = np.where(np.isnan(down), np.nan, down / np.maximum(app_amt, 1.0))
    goods = np.where(consumer | (cash & ~canceled), app_amt, np.nan)
    goods = np.where(goods == 0, np.nan, goods)
    terms = np.array([6, 10, 12, 18, 24, 30, 36, 48, 60], dtype=np.float64)
    cnt_payment = np.where(consumer, terms[_choice(rng, m, [22, 14, 30, 10, 13, 4, 5, 1, 1])],
                           terms[_choice(rng, m, [5, 4, 20, 12, 20, 8, 18, 5, 8])])  # fmt: skip
    cnt_payment = np.where(revolving, 0.0, cnt_payment)
    no_terms = (canceled & (rng.random(m) < 0.9)) | (unused & (rng.random(m) < 0.5))
    cnt_payment = _nan_where(cnt_payment, no_terms)
    annuity = np.where(
        revolving,
        np.round(credit_amt * 0.05, 3),
        np.round(credit_amt * (1.0 + 0.02 * cnt_payment) / np.maximum(cnt_payment, 1), 3),
    )
    annuity = _nan_where(annuity, np.isnan(cnt_payment) | (revolving & (credit_amt == 0)))

    # payment schedule of approved loans (days relative to the current application)
    first_due = np.where(revolving, DAYS_ANOMALY, days_decision + rng.integers(10, 40, m))
    last_1st = np.where(revolving, DAYS_ANOMALY, first_due + 30 * (np.nan_to_num(cnt_payment) - 1))
    early = rng.random(m) < 0.2
    last_due = np.where(
        revolving,
        DAYS_ANOMALY,
        np.where(
            early,
            np.minimum(last_1st, first_due + np.floor(rng.uniform(0, 1, m) * 30 * np.nan_to_num(cnt_payment))),
            last_1st,
        ),
    )
    last_due = np.where(last_due > 0, DAYS_ANOMALY, last_due)
    termination = np.where(last_due == DAYS_ANOMALY, DAYS_ANOMALY, last_due + rng.integers(0, 10, m))
    first_drawing = np.where(revolving, days_decision + rng.integers(1, 30, m), DAYS_ANOMALY)
    sched_missing = ~approved
    return _Loans(
        m=m,
        parent=parent,
        b=b,
        ids=ids,
        ctype=ctype,
        cash=cash,
        consumer=consumer,
        revolving=revolving,
        refused=refused,
        canceled=canceled,
        unused=unused,
        status=status,
        approved=approved,
        days_decision=days_decision,
        app_amt=app_amt,
        credit_amt=credit_amt,
        down=down,
        rate_down=rate_down,
        goods=goods,
        cnt_payment=cnt_payment,
        annuity=annuity,
        first_due=first_due,
        last_1st=last_1st,
        last_due=last_due,
        termination=termination,
        first_drawing=first_drawing,
        sched_missing=sched_missing,
    )


def _previous_rows(rng: np.random.Generator, cl: Clients, loans: _Loans) -> dict:
    """The previous_application table: one row per loan, its labels and schedule."""
    (
        m,
        parent,
        ids,
        ctype,
        cash,
        consumer,
        revolving,
        refused,
        canceled,
        unused,
        status,
        days_decision,
        app_amt,
        credit_amt,
        down,
        rate_down,
        goods,
        cnt_payment,
        annuity,
        first_due,
        last_1st,
        last_due,
        termination,
        first_drawing,
        sched_missing,
    ) = (
        loans.m,
        loans.parent,
        loans.ids,
        loans.ctype,
        loans.cash,
        loans.consumer,
        loans.revolving,
        loans.refused,
        loans.canceled,
        loans.unused,
        loans.status,
        loans.days_decision,
        loans.app_amt,
        loans.credit_amt,
        loans.down,
        loans.rate_down,
        loans.goods,
        loans.cnt_payment,
        loans.annuity,
        loans.first_due,
        loans.last_1st,
        loans.last_due,
        loans.termination,
        loans.first_drawing,
        loans.sched_missing,
    )
    product = np.where(
        cash, _choice(rng, m, [0, 0, 0, 8.6, 7.8, 0, 0, 0, 0, 3.6, 3.5, 2.1, 2.0, 0, 0, 0, 0]),
        np.where(consumer, _choice(rng, m, [0, 15.8, 13.2, 0, 0, 0, 5.9, 5.0, 0, 0, 0, 0, 0, 1.4, 1.4, 0.8, 0.15]),
                 np.where(rng.random(m) < 0.58, 5, 8)))  # fmt: skip
    product = np.where(cash & canceled, 0, product).astype(np.int16)
    x_sell = np.isin(product, [3, 4, 8, 10])
    walk_in = np.isin(product, [9, 11, 12])
    product_type = np.where(x_sell, 1, np.where(walk_in, 2, 0)).astype(np.int16)
    goods_cat = _cat(rng, m, GOODS)
    goods_cat = C(np.where(consumer, goods_cat.codes, len(GOODS)).astype(np.int16), goods_cat.labels + ("XNA",))
    purpose = _cat(rng, m, LOAN_PURPOSES)
    no_purpose = np.where(cash, len(LOAN_PURPOSES) + 1, len(LOAN_PURPOSES))  # XNA for cash loans, else XAP
    named = cash & (rng.random(m) < 0.12)
    purpose = C(np.where(named, purpose.codes, no_purpose).astype(np.int16), purpose.labels + ("XAP", "XNA"))
    reject = np.where(refused, _choice(rng, m, [0, 10.5, 3.3, 2.2, 0, 0.08, 0.32, 0.2, 0.04]), 0)
    reject = np.where(unused, 4, reject).astype(np.int16)
    portfolio = np.where(consumer, 0, np.where(revolving, 2, np.where(canceled, 3, 1))).astype(np.int16)
    seller_ind = np.where(
        consumer, _choice(rng, m, [0, 24, 16.5, 3.5, 1.8, 1.4, 1.1, 0.3, 0.16, 0.07, 0.03]), 0
    ).astype(np.int16)
    yield_group = np.where(revolving | (canceled & cash), 0, _choice(rng, m, [0, 23, 21, 19, 5.6])).astype(np.int16)
    suite = _cat(rng, m, SUITES)
    suite.codes[rng.random(m) < 0.49] = -1
    insured = np.where(sched_missing, np.nan, (rng.random(m) < 0.33).astype(np.float64))
    rate_primary = np.where(rng.random(m) < 0.0036, np.round(rng.uniform(0.03, 0.4, m), 6), np.nan)
    rate_priv = np.where(np.isnan(rate_primary), np.nan, np.round(rng.uniform(0.37, 0.87, m), 6))
    prev = {
        "SK_ID_PREV": ids,
        "SK_ID_CURR": cl.ids[parent],
        "NAME_CONTRACT_TYPE": C(ctype, CONTRACT_TYPES),
        "AMT_ANNUITY": F(annuity, 3),
        "AMT_APPLICATION": F(app_amt, 1),
        "AMT_CREDIT": F(credit_amt, 1),
        "AMT_DOWN_PAYMENT": F(down, 1),
        "AMT_GOODS_PRICE": F(goods, 1),
        "WEEKDAY_APPR_PROCESS_START": _cat(rng, m, WEEKDAYS),
        "HOUR_APPR_PROCESS_START": np.clip(np.rint(rng.normal(12.5, 3.3, m)), 0, 23).astype(np.int64),
        "FLAG_LAST_APPL_PER_CONTRACT": C((rng.random(m) < 0.995).astype(np.int8), ("N", "Y")),
        "NFLAG_LAST_APPL_IN_DAY": (rng.random(m) < 0.9965).astype(np.int64),
        "RATE_DOWN_PAYMENT": F(rate_down, None),
        "RATE_INTEREST_PRIMARY": F(rate_primary, None),
        "RATE_INTEREST_PRIVILEGED": F(rate_priv, None),
        "NAME_CASH_LOAN_PURPOSE": purpose,
        "NAME_CONTRACT_STATUS": C(status, PREV_STATUS),
        "DAYS_DECISION": days_decision,
        "NAME_PAYMENT_TYPE": C(
            np.where(cash | consumer, _choice(rng, m, [62, 0.5, 0.06, 12]), 3).astype(np.int16),
            ("Cash through the bank", "Non-cash from your account", "Cashless from the account of the employer", "XNA"),
        ),  # fmt: skip
        "CODE_REJECT_REASON": C(reject, REJECT),
        "NAME_TYPE_SUITE": suite,
        "NAME_CLIENT_TYPE": _cat(rng, m, [("Repeater", 73.7), ("New", 18.0), ("Refreshed", 8.1), ("XNA", 0.1)]),
        "NAME_GOODS_CATEGORY": goods_cat,
        "NAME_PORTFOLIO": C(portfolio, ("POS", "Cash", "Cards", "XNA", "Cars")),
        "NAME_PRODUCT_TYPE": C(product_type, ("XNA", "x-sell", "walk-in")),
        "CHANNEL_TYPE": _cat(rng, m, CHANNELS),
        "SELLERPLACE_AREA": np.where(consumer, np.floor(rng.exponential(400, m)), -1).astype(np.int64),
        "NAME_SELLER_INDUSTRY": C(seller_ind, SELLER_INDUSTRY),
        "CNT_PAYMENT": F(cnt_payment, 0),
        "NAME_YIELD_GROUP": C(yield_group, ("XNA", "middle", "high", "low_normal", "low_action")),
        "PRODUCT_COMBINATION": C(np.where(rng.random(m) < 0.0002, -1, product).astype(np.int16), PRODUCTS),
        "DAYS_FIRST_DRAWING": F(_nan_where(first_drawing.astype(np.float64), sched_missing), 0),
        "DAYS_FIRST_DUE": F(_nan_where(first_due.astype(np.float64), sched_missing), 0),
        "DAYS_LAST_DUE_1ST_VERSION": F(_nan_where(last_1st.astype(np.float64), sched_missing), 0),
        "DAYS_LAST_DUE": F(_nan_where(last_due.astype(np.float64), sched_missing), 0),
        "DAYS_TERMINATION": F(_nan_where(termination.astype(np.float64), sched_missing), 0),
        "NFLAG_INSURED_ON_APPROVAL": F(insured, 0),
    }
    return prev


def _instalment_plan(loans: _Loans) -> _Instalments:
    """The approved loans with a number of instalments, and how many instalments each has had so far."""
    b, revolving, approved, cnt_payment, first_due, last_due = (
        loans.b,
        loans.revolving,
        loans.approved,
        loans.cnt_payment,
        loans.first_due,
        loans.last_due,
    )
    # ---- approved instalment loans: POS_CASH_balance and installments_payments
    loan = approved & ~revolving & ~np.isnan(cnt_payment)
    li = np.flatnonzero(loan)
    k_term = cnt_payment[li].astype(np.int64)
    fd = first_due[li]
    elapsed = np.floor(-fd / 30.0).astype(np.int64) + 1
    ld = last_due[li]
    paid_off = np.where(ld == DAYS_ANOMALY, k_term, np.floor((ld - fd) / 30.0).astype(np.int64) + 1)
    n_inst = np.clip(np.minimum(np.minimum(k_term, elapsed), paid_off), 0, None)
    lb = b[li]
    return _Instalments(li=li, k_term=k_term, fd=fd, ld=ld, n_inst=n_inst, lb=lb)


def _installments(rng: np.random.Generator, cl: Clients, loans: _Loans, plan: _Instalments) -> dict:
    """installments_payments: one row per instalment paid (two for an instalment paid in two parts)."""
    parent, ids, annuity = loans.parent, loans.ids, loans.annuity
    li, fd, n_inst, lb = plan.li, plan.fd, plan.n_inst, plan.lb
    ipar, ipos = _expand(n_inst)
    r = len(ipar)
    ib = lb[ipar]
    inst_days = fd[ipar] + 30 * ipos
    late = rng.random(r) < _sigmoid(-3.1 + 1.25 * ib)
    delay = np.where(late, np.ceil(rng.exponential(6 + 10 * np.maximum(ib, 0), r)), -np.floor(rng.exponential(9, r)))
    entry = np.minimum(inst_days + delay, -1)
    amt_inst = np.round(annuity[li][ipar] * np.where(rng.random(r) < 0.03, rng.uniform(0.2, 1.5, r), 1.0), 3)
    short = late & (rng.random(r) < 0.35)
    amt_pay = np.where(short, np.round(amt_inst * rng.uniform(0.1, 0.95, r), 3), amt_inst)
    # a few instalments are paid in two parts: a second row with the rest
    split = (rng.random(r) < 0.135) & ~short
    first_part = np.round(amt_pay * rng.uniform(0.3, 0.7, r), 3)
    dup = np.flatnonzero(split)
    order = np.concatenate([np.arange(r), dup])
    order = order[np.argsort(np.concatenate([np.arange(r) * 2, dup * 2 + 1]), kind="stable")]
    pay = np.where(split, first_part, amt_pay)
    pay_all = np.concatenate([pay, amt_pay[dup] - first_part[dup]])[order]
    entry_all = np.concatenate([entry, np.minimum(entry[dup] + rng.integers(0, 20, len(dup)), -1)])[order]
    rows_parent = np.concatenate([ipar, ipar[dup]])[order]
    rows_pos = np.concatenate([ipos, ipos[dup]])[order]
    rows_days = np.concatenate([inst_days, inst_days[dup]])[order]
    rows_amt = np.concatenate([amt_inst, amt_inst[dup]])[order]
    t = len(order)
    version = np.where(rng.random(t) < 0.1, 2.0, 1.0)
    entry_all = _nan_where(entry_all.astype(np.float64), rng.random(t) < 0.0002)
    inst = {
        "SK_ID_PREV": ids[li][rows_parent],
        "SK_ID_CURR": cl.ids[parent[li]][rows_parent],
        "NUM_INSTALMENT_VERSION": F(version, 0),
        "NUM_INSTALMENT_NUMBER": (rows_pos + 1).astype(np.int64),
        "DAYS_INSTALMENT": F(rows_days.astype(np.float64), 0),
        "DAYS_ENTRY_PAYMENT": F(entry_all, 0),
        "AMT_INSTALMENT": F(rows_amt, 3),
        "AMT_PAYMENT": F(_nan_where(pay_all, np.isnan(entry_all)), 3),
    }
    return inst


def _pos_cash(rng: np.random.Generator, cl: Clients, loans: _Loans, plan: _Instalments) -> dict:
    """POS_CASH_balance: one row per month since the first due date, for most instalment loans."""
    parent, ids = loans.parent, loans.ids
    li, k_term, fd, n_inst = plan.li, plan.k_term, plan.fd, plan.n_inst
    lb = plan.lb
    # POS: one row per month since the first due date, for most loans (cash loans too, as in Kaggle)
    has_pos = rng.random(len(li)) < 0.8
    start_month = np.floor(fd / 30.0).astype(np.int64)  # months -1, -2, ... before the application
    n_pos = np.where(has_pos, np.clip(np.minimum(n_inst + 1, -start_month), 0, 96), 0)
    ppar, ppos = _expand(n_pos)
    s = len(ppar)
    pb = lb[ppar]
    months = start_month[ppar] + ppos
    k_rows = k_term[ppar]
    future = np.maximum(k_rows - ppos, 0).astype(np.float64)
    done = ppos >= k_rows
    pstatus = np.where(done, 1, 0)
    pstatus = np.where((ppos == 0) & (rng.random(s) < 0.05), 2, pstatus)
    pstatus = np.where(~done & (rng.random(s) < 0.0015), 3, pstatus).astype(np.int16)
    late_m = rng.random(s) < _sigmoid(-3.9 + 1.3 * pb)
    dpd = np.where(late_m, np.ceil(rng.exponential(8 + 15 * np.maximum(pb, 0), s)), 0).astype(np.int64)
    dpd_def = np.where(dpd > 7, dpd, 0).astype(np.int64)
    pos = {
        "SK_ID_PREV": ids[li][ppar],
        "SK_ID_CURR": cl.ids[parent[li]][ppar],
        "MONTHS_BALANCE": months.astype(np.int64),
        "CNT_INSTALMENT": F(_nan_where(k_rows.astype(np.float64), rng.random(s) < 0.0026), 0),
        "CNT_INSTALMENT_FUTURE": F(_nan_where(future, rng.random(s) < 0.0026), 0),
        "NAME_CONTRACT_STATUS": C(
            pstatus,
            (
                "Active",
                "Completed",
                "Signed",
                "Returned to the store",
                "Demand",
                "Approved",
                "Amortized debt",
                "Canceled",
                "XNA",
            ),
        ),  # fmt: skip
        "SK_DPD": dpd,
        "SK_DPD_DEF": dpd_def,
    }
    return pos


def _credit_cards(rng: np.random.Generator, cl: Clients, loans: _Loans) -> dict:
    """credit_card_balance: one row per month since drawing, for the approved revolving loans."""
    parent, b, ids, revolving, approved, days_decision = (
        loans.parent,
        loans.b,
        loans.ids,
        loans.revolving,
        loans.approved,
        loans.days_decision,
    )
    # ---- approved revolving loans: credit_card_balance, one row per month since drawing
    ci = np.flatnonzero(approved & revolving)
    months_open = np.floor(-days_decision[ci] / 30.44).astype(np.int64) + 1
    n_cc = np.minimum(months_open, 96)
    cpar, cpos = _expand(n_cc)
    w = len(cpar)
    cb = b[ci][cpar]
    cc_month = (-n_cc[cpar] + cpos).astype(np.int64)
    limit = rng.choice([0, 22500, 45000, 67500, 90000, 135000, 180000, 225000, 270000, 450000], len(ci),
                       p=[0.05, 0.05, 0.25, 0.1, 0.15, 0.15, 0.1, 0.08, 0.05, 0.02])[cpar].astype(np.int64)  # fmt: skip
    util = np.clip(rng.beta(0.6, 1.2, w) + 0.12 * cb, 0, 1.3)
    in_use = rng.random(w) < np.clip(0.55 + 0.1 * cb, 0.2, 0.95)
    balance = np.where(in_use, np.round(limit * util, 3), 0.0)
    draw_atm = np.where(
        in_use & (rng.random(w) < 0.4), np.round(rng.choice([4500, 9000, 13500, 22500, 45000], w) * 1.0, 3), 0.0
    )
    draw_pos = np.where(in_use & (rng.random(w) < 0.45), np.round(np.exp(rng.normal(9.2, 1.0, w)), 3), 0.0)
    draw_other = np.where(in_use & (rng.random(w) < 0.01), np.round(np.exp(rng.normal(10.5, 1.0, w)), 3), 0.0)
    draws = draw_atm + draw_pos + draw_other
    min_reg = np.round(balance * 0.05, 3)
    late_c = in_use & (rng.random(w) < _sigmoid(-3.6 + 1.3 * cb))
    payment = np.where(
        late_c,
        np.round(min_reg * rng.uniform(0, 0.9, w), 3),
        np.round(np.maximum(min_reg, balance * rng.uniform(0, 0.5, w)), 3),
    )
    cc_dpd = np.where(late_c, np.ceil(rng.exponential(10 + 15 * np.maximum(cb, 0), w)), 0).astype(np.int64)
    cnt_atm = np.where(draw_atm > 0, rng.integers(1, 5, w), 0).astype(np.float64)
    cnt_pos = np.where(draw_pos > 0, rng.integers(1, 8, w), 0).astype(np.float64)
    cnt_other = (draw_other > 0).astype(np.float64)
    nan_draw = rng.random(w) < 0.195
    nan_inst = rng.random(w) < 0.08
    principal = np.round(balance * 0.96, 3)
    cstatus = np.where(cpos == n_cc[cpar] - 1, np.where(rng.random(w) < 0.05, 1, 0), 0)
    cstatus = np.where((cpos == 0) & (rng.random(w) < 0.05), 2, cstatus).astype(np.int16)
    cc = {
        "SK_ID_PREV": ids[ci][cpar],
        "SK_ID_CURR": cl.ids[parent[ci]][cpar],
        "MONTHS_BALANCE": cc_month,
        "AMT_BALANCE": F(balance, 3),
        "AMT_CREDIT_LIMIT_ACTUAL": limit,
        "AMT_DRAWINGS_ATM_CURRENT": F(_nan_where(draw_atm, nan_draw), 3),
        "AMT_DRAWINGS_CURRENT": F(draws, 3),
        "AMT_DRAWINGS_OTHER_CURRENT": F(_nan_where(draw_other, nan_draw), 3),
        "AMT_DRAWINGS_POS_CURRENT": F(_nan_where(draw_pos, nan_draw), 3),
        "AMT_INST_MIN_REGULARITY": F(_nan_where(min_reg, nan_inst), 3),
        "AMT_PAYMENT_CURRENT": F(_nan_where(payment, nan_draw), 3),
        "AMT_PAYMENT_TOTAL_CURRENT": F(payment, 3),
        "AMT_RECEIVABLE_PRINCIPAL": F(principal, 3),
        "AMT_RECIVABLE": F(balance, 3),
        "AMT_TOTAL_RECEIVABLE": F(balance, 3),
        "CNT_DRAWINGS_ATM_CURRENT": F(_nan_where(cnt_atm, nan_draw), 0),
        "CNT_DRAWINGS_CURRENT": (cnt_atm + cnt_pos + cnt_other).astype(np.int64),
        "CNT_DRAWINGS_OTHER_CURRENT": F(_nan_where(cnt_other, nan_draw), 0),
        "CNT_DRAWINGS_POS_CURRENT": F(_nan_where(cnt_pos, nan_draw), 0),
        "CNT_INSTALMENT_MATURE_CUM": F(_nan_where(np.minimum(cpos, 120).astype(np.float64), nan_inst), 0),
        "NAME_CONTRACT_STATUS": C(
            cstatus, ("Active", "Completed", "Signed", "Demand", "Sent proposal", "Refused", "Approved")
        ),  # fmt: skip
        "SK_DPD": cc_dpd,
        "SK_DPD_DEF": np.where(cc_dpd > 30, cc_dpd, 0).astype(np.int64),
    }
    return cc


# --------------------------------------------------------------------------------------------
# driver


def generate(
    out_dir: Path, n_clients: int, seed: int, test_share: float = 0.15, progress: bool = True
) -> dict[str, int]:
    """Write the eight Kaggle-layout CSV files into out_dir; return rows written per file."""
    if n_clients < 1:
        raise ValueError("n_clients must be at least 1")
    if not 0.0 <= test_share < 1.0:
        raise ValueError("test_share must be in [0, 1)")
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    schema = load_schema()
    rows = dict.fromkeys(FILES, 0)
    handles = {}
    try:
        for name in FILES:
            handles[name] = open(out_dir / name, "wb")  # noqa: SIM115 - closed in finally
            handles[name].write((",".join(c for c, _ in schema[name]) + "\n").encode())
        next_bureau, next_prev = FIRST_BUREAU_ID, FIRST_PREV_ID
        n_blocks = (n_clients + BLOCK_CLIENTS - 1) // BLOCK_CLIENTS
        for block in tqdm(range(n_blocks), desc="generate", unit="block", disable=not progress, file=sys.stderr):
            lo = block * BLOCK_CLIENTS
            ids = FIRST_CLIENT_ID + np.arange(lo, min(lo + BLOCK_CLIENTS, n_clients), dtype=np.int64)
            cl = _clients(_block_rng(seed, block, 0), ids, test_share)
            bureau, bb = _bureau(_block_rng(seed, block, 1), cl, next_bureau)
            next_bureau += len(bureau["SK_ID_BUREAU"])
            prev, pos, inst, cc, n_prev = _previous(_block_rng(seed, block, 2), cl, next_prev)
            next_prev += n_prev
            tables = {
                "application_train.csv": _take(cl.app, ~cl.is_test),
                "application_test.csv": _take(cl.app, cl.is_test),
                "bureau.csv": bureau,
                "bureau_balance.csv": bb,
                "previous_application.csv": prev,
                "POS_CASH_balance.csv": pos,
                "installments_payments.csv": inst,
                "credit_card_balance.csv": cc,
            }
            for name in FILES:
                data, count = _csv_bytes(tables[name], schema[name])
                handles[name].write(data)
                rows[name] += count
            del tables, bureau, bb, prev, pos, inst, cc
    finally:
        for h in handles.values():
            h.close()
    return rows
