"""Fairness (app.monitoring.fairness): figures equal a hand computation on a small fixture."""

from __future__ import annotations

import uuid

import apsw
import numpy as np
import pytest

from app.monitoring import fairness, outcomes
from app.monitoring.outcomes import Outcome
from app.store import open_store

# 10 clients. Group A: 6 clients, B: 4 clients.
#            A  A  A  A  A  A  B  B  B  B
REFUSED = [0, 0, 0, 0, 1, 1, 0, 1, 1, 1]
DEFAULT = [0, 1, 0, 0, 1, 0, 1, 1, 0, np.nan]  # client 10 has no outcome yet
GROUPS = ["A"] * 6 + ["B"] * 4


def test_group_table_by_hand():
    t = fairness.group_table(np.array(GROUPS, dtype=object), np.array(REFUSED, bool), np.array(DEFAULT), min_group=1)
    a, b = t["groups"]
    assert (a["group"], b["group"]) == ("A", "B")
    # approval: A accepts 4 of 6, B 1 of 4
    assert a["clients"] == 6 and a["approval_rate"] == pytest.approx(4 / 6)
    assert b["clients"] == 4 and b["approval_rate"] == pytest.approx(1 / 4)
    # default rate among the accepted (with an outcome): A accepted 1,2,3,4 -> 1 default; B accepted 7 -> default
    assert a["default_rate_accepted"] == pytest.approx(1 / 4)
    assert b["default_rate_accepted"] == pytest.approx(1.0)
    # TPR = refused defaulters / defaulters: A defaulters 2, 5 -> 5 refused; B defaulters 7, 8 -> 8 refused
    assert a["tpr"] == pytest.approx(1 / 2) and b["tpr"] == pytest.approx(1 / 2)
    # FPR = refused good / good: A good 1, 3, 4, 6 -> 6 refused; B good 9 -> refused
    assert a["fpr"] == pytest.approx(1 / 4) and b["fpr"] == pytest.approx(1.0)
    assert a["outcomes"] == 6 and b["outcomes"] == 3
    assert a["defaults"] == 2 and b["defaults"] == 2
    # ratio to the best-treated group (A): B = (1/4) / (4/6) = 0.375 < 0.8 -> flagged
    assert t["best_group"] == "A"
    assert a["approval_ratio"] == pytest.approx(1.0) and not a["flagged"]
    assert b["approval_ratio"] == pytest.approx(0.375) and b["flagged"]
    assert t["flagged"] == ["B"] and t["min_ratio"] == pytest.approx(0.375)


def test_small_groups_are_not_compared():
    t = fairness.group_table(np.array(GROUPS, dtype=object), np.array(REFUSED, bool), np.array(DEFAULT), min_group=5)
    a, b = t["groups"]
    assert b["too_few"] and b["approval_ratio"] is None and not b["flagged"]
    assert a["approval_ratio"] == pytest.approx(1.0) and t["flagged"] == []


def test_group_without_defaulters_has_no_tpr():
    t = fairness.group_table(np.array(["A", "A", "B"], dtype=object), np.array([0, 1, 0], bool),
                             np.array([0.0, 1.0, 0.0]), min_group=1)  # fmt: skip
    b = t["groups"][1]
    assert b["tpr"] is None and b["fpr"] == 0.0


def test_age_bands():
    got = fairness.age_band(np.array([18, 24.9, 25, 34.99, 35, 50, 64.9, 65, 90, np.nan]))
    assert got.tolist() == ["<25", "<25", "25-34", "25-34", "35-44", "45-54", "55-64", "65+", "65+", "unknown"]


def test_parse_attributes():
    assert fairness.parse_attributes("") == fairness.DEFAULT_ATTRIBUTES
    assert fairness.parse_attributes(" gender , education ") == ("gender", "education")


def _data_db(path) -> apsw.Connection:
    conn = apsw.Connection(str(path))
    conn.execute(
        "CREATE TABLE clients (client_id INTEGER PRIMARY KEY, gender TEXT, age_years REAL, family_status TEXT);"
        "INSERT INTO clients VALUES (1,'F',30,'Married'),(2,'M',70,NULL),(3,'F',NULL,'Single');"
    )
    return conn


def test_sensitive_values_from_clients(tmp_path):
    conn = _data_db(tmp_path / "data.db")
    vals = fairness.sensitive_values(conn, np.array([3, 1, 99, 2]), fairness.DEFAULT_ATTRIBUTES)
    assert vals["gender"].tolist() == ["F", "F", "unknown", "M"]
    assert vals["age_band"].tolist() == ["unknown", "25-34", "unknown", "65+"]
    assert vals["family_status"].tolist() == ["Single", "Married", "unknown", "unknown"]
    with pytest.raises(fairness.FairnessError, match="no column 'religion'"):
        fairness.sensitive_values(conn, np.array([1]), ("religion",))


def _log(store, rows):
    with store:
        for cid, ts, dec in rows:
            store.execute(
                "INSERT INTO prediction_log (ts, request_id, client_id, features, probability, decision, model_id,"
                " latency_ms, role, endpoint) VALUES (?,?,?,x'',0.5,?,'m',1,'officer','e')",
                (ts, str(uuid.uuid4()), cid, dec),
            )


def test_live_report_latest_decision_per_client(tmp_path):
    _data_db(tmp_path / "data.db").close()
    store = open_store(tmp_path / "store.db")
    rows = [(1, 10.0, "refuse"), (1, 20.0, "accept"), (2, 15.0, "refuse"), (3, 5.0, "accept"), (None, 30.0, "refuse")]
    _log(store, rows)
    outcomes.upsert(store, [Outcome(2, 1, 100.0)], "test")
    rep = fairness.live_report(tmp_path / "store.db", tmp_path / "data.db", min_group=1)
    assert rep["clients"] == 3 and rep["outcomes"] == 1
    g = {r["group"]: r for r in rep["attributes"]["gender"]["groups"]}
    assert g["F"]["approval_rate"] == 1.0  # client 1's latest decision is accept, client 3 accept
    assert g["M"]["approval_rate"] == 0.0 and g["M"]["tpr"] == 1.0
    assert rep["flagged"] == {"gender": ["M"], "age_band": ["65+"], "family_status": ["unknown"]}
    with pytest.raises(fairness.FairnessError, match="no decisions"):
        fairness.live_report(tmp_path / "store.db", tmp_path / "data.db", since=1000.0)
    with pytest.raises(fairness.FairnessError, match="no column 'religion'"):
        fairness.live_report(tmp_path / "store.db", tmp_path / "data.db", attributes=("religion",))


def test_live_report_in_sql_equals_the_row_by_row_computation(tmp_path):
    """The SQL counting of live_report gives the figures of fairness() over per-client rows (sensitive_values)."""
    rng = np.random.default_rng(5)
    n = 400
    data = apsw.Connection(str(tmp_path / "data.db"))
    data.execute(
        "CREATE TABLE clients (client_id INTEGER PRIMARY KEY, gender TEXT, age_years REAL, family_status TEXT)"
    )
    ages = rng.choice([np.nan, 18.0, 24.99, 25.0, 44.9, 45.0, 64.99, 65.0, 80.0], n)
    with data:
        data.executemany(
            "INSERT INTO clients VALUES (?, ?, ?, ?)",
            [(i + 1, rng.choice(["F", "M", None]), None if np.isnan(a) else float(a), rng.choice(["A", "B", "C"]))
             for i, a in enumerate(ages)],
        )  # fmt: skip
    store = open_store(tmp_path / "store.db")
    picks = rng.integers(1, n + 60, 1500)  # some ids unknown to the data (-> 'unknown' groups)
    _log(store, [(int(c), float(t), rng.choice(["accept", "refuse"])) for t, c in enumerate(picks)])
    outs = [Outcome(int(c), int(rng.integers(0, 2)), 1e9) for c in np.unique(picks)[::2]]
    outcomes.upsert(store, outs, "test")
    got = fairness.live_report(tmp_path / "store.db", tmp_path / "data.db", min_group=5)
    latest = {}
    for t, c in enumerate(picks):
        latest[int(c)] = t
    rows = store.execute("SELECT client_id, decision = 'refuse' FROM prediction_log ORDER BY ts").fetchall()
    last = dict(rows)
    ids = np.array(sorted(latest))
    refused = np.array([last[i] for i in ids], dtype=bool)
    o = {x.client_id: x.defaulted for x in outs}
    dflt = np.array([o.get(int(i), np.nan) for i in ids], dtype=float)
    want = fairness.fairness(fairness.sensitive_values(data, ids, fairness.DEFAULT_ATTRIBUTES), refused, dflt,
                             min_group=5)  # fmt: skip
    assert got["attributes"] == want["attributes"]
    assert (got["clients"], got["outcomes"]) == (want["clients"], want["outcomes"])
