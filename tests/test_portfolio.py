"""The officer's worklist endpoints (app/service/portfolio.py) and the drift report page
(app/service/routes/drift_report.py),
against a real `credit serve` on the test pipeline: counts equal SQL, borderline equals a brute-force search."""

from __future__ import annotations

import apsw
import numpy as np
import pytest
from apiserver import ADMIN, OFFICER

from app.scoring.db import connect
from app.service.portfolio import Snapshot
from app.store import default_path


@pytest.fixture(scope="module")
def sql(data):
    conn = connect(data.db, data.model_dir, readonly=True)
    yield conn
    conn.close()


def test_summary_counts_equal_sql(api, sql):
    with api.client(headers=OFFICER) as c:
        r = c.get("/portfolio")
    assert r.status_code == 200, r.text
    got = r.json()
    clients, accepted, refused, threshold, model_id = sql.execute(
        "SELECT clients, accepted, refused, threshold, model_id FROM portfolio_summary"
    ).fetchall()[0]
    assert (got["clients"], got["accepted"], got["refused"]) == (clients, accepted, refused)
    assert got["threshold"] == threshold and got["model_id"] == model_id
    bands = {b: (n, k) for b, n, k in sql.execute("SELECT band, clients, refused FROM score_bands")}
    assert {b["band"]: (b["clients"], b["refused"]) for b in got["bands"]} == bands
    assert sum(b["clients"] for b in got["bands"]) == clients


def test_borderline_are_the_clients_closest_to_the_threshold(api, sql):
    with api.client(headers=OFFICER) as c:
        r = c.get("/portfolio/borderline", params={"limit": 7})
    assert r.status_code == 200, r.text
    body = r.json()
    rows = sql.execute("SELECT client_id, probability FROM client_scores").fetchall()
    thr = body["threshold"]
    expected = sorted(rows, key=lambda r: (abs(r[1] - thr), r[1] < thr))[:7]
    assert [x["client_id"] for x in body["rows"]] == [cid for cid, _ in expected]
    for x in body["rows"]:
        assert x["decision"] == ("refuse" if x["probability"] >= thr else "accept")


def test_recent_lists_the_clients_just_scored_newest_first_once_each(api, known):
    cid, _ = known
    with api.client(headers=OFFICER) as c:
        others = c.get("/clients", params={"limit": 3}).json()["client_ids"]
        for i in [*others, cid, cid]:
            assert c.get(f"/clients/{i}/score").status_code == 200
        r = c.get("/portfolio/recent", params={"limit": 3})
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert rows[0]["client_id"] == cid
    assert len({x["client_id"] for x in rows}) == len(rows) == 3
    assert rows[0]["ts"] >= rows[1]["ts"] >= rows[2]["ts"]


def test_same_auth_and_error_shape(api):
    with api.client() as c:
        for path in ("/portfolio", "/portfolio/recent", "/portfolio/borderline"):
            r = c.get(path)
            assert r.status_code == 401 and set(r.json()) == {"error", "detail"}
            r = c.get(path, headers=OFFICER, params={"limit": 0} if path != "/portfolio" else {"limit": 1})
            assert r.status_code == 400 and set(r.json()) == {"error", "detail"}
        r = c.get("/monitoring/drift/report", headers=OFFICER)
        assert r.status_code == 403 and set(r.json()) == {"error", "detail"}


def test_drift_report_needs_the_minimum_window_then_serves_evidently_html(api, data):
    with api.client(headers=ADMIN) as c:
        conn = apsw.Connection(str(default_path(data.db)), flags=apsw.SQLITE_OPEN_READONLY)
        logged = conn.execute("SELECT count(*) FROM prediction_log").fetchall()[0][0]
        conn.close()
        if logged < 200:
            r = c.get("/monitoring/drift/report")
            assert r.status_code == 409, r.text
            assert r.json()["error"].startswith("not enough traffic to judge drift")
        ids = c.get("/clients", params={"limit": 100}, headers=OFFICER).json()["client_ids"]
        for _ in range(3):
            assert c.post("/score/batch", json={"client_ids": ids}, headers=OFFICER).status_code == 200
        r = c.get("/monitoring/drift/report", timeout=600)  # a worker at nice 10: minutes on a saturated machine
    assert r.status_code == 200, r.text[:500]
    assert r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text.lower() and "root_metric_" in r.text and "EXT_SOURCE" in r.text


def test_snapshot_borderline_and_summary_on_ties_and_edges():
    probs = np.array([0.5, 0.1, 0.3, 0.3, 0.95, 1.0, 0.0])
    ids = np.arange(1, 8)
    snap = Snapshot(("k",), ids, probs, 0.3, "m", 0.0)
    s = snap.summary()
    assert (s.clients, s.accepted, s.refused) == (7, 2, 5)  # p >= threshold refuses
    assert [(b.band, b.clients) for b in s.bands] == [(0, 1), (1, 1), (3, 2), (5, 1), (9, 2)]
    rows = snap.borderline(3)
    # both 0.3 first (distance 0, refused), then the tie at distance 0.2 (0.1 and 0.5) goes to the accepted side
    assert [(r.client_id, r.probability, r.decision) for r in rows] == [
        (3, 0.3, "refuse"),
        (4, 0.3, "refuse"),
        (2, 0.1, "accept"),
    ]
    assert len(snap.borderline(100)) == 7
