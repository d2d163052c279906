"""What-if on raw application values: the ingest's SQL recomputes the application features."""

from __future__ import annotations

import apsw
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.data.features import data_fingerprint, feature_names
from app.data.whatif import WhatIfError, what_if


@pytest.fixture(scope="module")
def conn(pipeline):
    conn = apsw.Connection(str(pipeline.db), flags=apsw.SQLITE_OPEN_READONLY)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def names(conn):
    return feature_names(conn)


def stored(conn, cid: int) -> np.ndarray:
    return np.frombuffer(conn.execute("SELECT x FROM features WHERE client_id = ?", (cid,)).fetchone()[0], "<f4")


def test_no_change_gives_back_the_stored_vector_for_every_sampled_client(conn, names):
    ids = [r[0] for r in conn.execute("SELECT client_id FROM features ORDER BY random() LIMIT 300")]
    fingerprint = data_fingerprint(conn)
    for cid in ids:
        x = stored(conn, cid)
        out, _before = what_if(conn, cid, {}, names, x)
        np.testing.assert_array_equal(out, x, err_msg=f"client {cid}")
    assert data_fingerprint(conn) == fingerprint  # nothing written
    assert conn.execute("SELECT count(*) FROM temp.sqlite_schema").fetchone()[0] == 0  # nothing left behind


@settings(max_examples=40, deadline=None)
@given(
    credit=st.floats(1_000, 5_000_000, allow_nan=False),
    income=st.floats(1_000, 2_000_000, allow_nan=False),
    ext=st.one_of(st.none(), st.floats(0, 1)),
)
def test_ratios_follow_the_raw_values(conn, names, credit, income, ext):
    cid = conn.execute("SELECT min(client_id) FROM features").fetchone()[0]
    changes = {"AMT_CREDIT": credit, "AMT_INCOME_TOTAL": income, "EXT_SOURCE_1": ext}
    out, before = what_if(conn, cid, changes, names, stored(conn, cid))
    f = dict(zip(names, out.tolist(), strict=True))
    assert f["CREDIT_INCOME_RATIO"] == np.float32(credit / income)
    assert f["AMT_CREDIT"] == np.float32(credit)
    present = [v for v in (ext, before["EXT_SOURCE_2"], before["EXT_SOURCE_3"]) if v is not None]
    expected_mean = np.float32(sum(present) / len(present)) if present else None
    assert np.isnan(f["EXT_SOURCE_MEAN"]) if expected_mean is None else f["EXT_SOURCE_MEAN"] == expected_mean


def test_unknown_columns_and_databases_without_application_tables(conn, names):
    cid = conn.execute("SELECT min(client_id) FROM features").fetchone()[0]
    with pytest.raises(WhatIfError) as err:
        what_if(conn, cid, {"NOPE": 1, "AMT_CREDIT": 1.0}, names, stored(conn, cid))
    assert err.value.detail == {"unknown_columns": ["NOPE"]}
    assert what_if(conn, 1, {}, names, stored(conn, cid)) is None
    with pytest.raises(LookupError):
        what_if(apsw.Connection(":memory:"), cid, {}, names, stored(conn, cid))
