"""GET /clients/{id}/score is answered in front of Litestar (app.service.fastpath): the law is that its answer
is Litestar's own for the same request (status, headers, body; only the fresh request id differs), errors
included, and that every score it answers is logged once."""

from __future__ import annotations

import json

import apsw
import pytest
from apiserver import ADMIN_KEY, KEYS, OFFICER_KEY, copy_pipeline
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar

from app.store import predlog


@pytest.fixture(scope="module")
def served(pipeline, tmp_path_factory):
    from litestar.testing import TestClient

    from app.config import Settings
    from app.service.api import create_app

    data = copy_pipeline(pipeline, tmp_path_factory.mktemp("fastpath"))
    conn = apsw.Connection(str(data.db), flags=apsw.SQLITE_OPEN_READONLY)
    ids = [r[0] for r in conn.execute("SELECT client_id FROM features ORDER BY client_id LIMIT 3")]
    conn.close()
    app = create_app(Settings(db=str(data.db), model_dir=str(data.model_dir), api_keys=KEYS, keys_file=""))
    with TestClient(app) as client:
        yield app, client.blocking_portal, ids


def get(served, path: str, authorization: str | None, litestar_only: bool = False, query: bytes = b""):
    """(status, headers, body) of one GET through the app (fast path) or through Litestar alone."""
    app, portal, _ids = served
    headers = [(b"host", b"test")]
    if authorization is not None:
        headers.append((b"authorization", authorization.encode("utf-8", "surrogateescape")))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    call = Litestar.__call__ if litestar_only else type(app).__call__
    portal.call(call, app, scope, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], sorted((k.lower(), v) for k, v in start["headers"]), body


def same_answer(served, path: str, authorization: str | None) -> tuple[int, dict]:
    fast = get(served, path, authorization)
    slow = get(served, path, authorization, litestar_only=True)
    assert fast[0] == slow[0], (path, fast, slow)
    fast_body, slow_body = json.loads(fast[2]), json.loads(slow[2])
    if fast[0] == 200:
        assert fast_body.pop("request_id") != slow_body.pop("request_id")
        assert len(fast[2]) - len(slow[2]) == 0  # request ids have one length: the content-length is the same
    assert fast_body == slow_body
    assert fast[1] == slow[1], (fast[1], slow[1])
    return fast[0], fast_body


def logged(served, request_id: str) -> list[tuple]:
    app = served[0]
    conn = app.service.log_conn()
    return conn.execute(
        "SELECT client_id, role, endpoint, probability FROM prediction_log WHERE request_id = ?",
        (request_id,),
    ).fetchall()


def test_a_score_is_the_routes_answer_and_logged_once(served):
    cid = served[2][0]
    status, body = same_answer(served, f"/clients/{cid}/score", f"Bearer {OFFICER_KEY}")
    assert status == 200 and body["client_id"] == cid and 0.0 <= body["probability"] <= 1.0
    status, headers, raw = get(served, f"/clients/{cid}/score", f"Bearer {ADMIN_KEY}")
    answer = json.loads(raw)
    assert status == 200 and dict(headers)[b"content-type"] == b"application/json"
    rows = logged(served, answer["request_id"])
    assert rows == [(cid, "admin", "GET /clients/{id}/score", answer["probability"])]


@pytest.mark.parametrize(
    ("path", "authorization", "status"),
    [
        ("/clients/{cid}/score", None, 401),
        ("/clients/{cid}/score", "Bearer not-a-key", 401),
        ("/clients/{cid}/score", f"Basic {OFFICER_KEY}", 401),
        ("/clients/abc/score", f"Bearer {OFFICER_KEY}", 400),
        ("/clients/0/score", f"Bearer {OFFICER_KEY}", 400),
        ("/clients/007/score", f"Bearer {OFFICER_KEY}", 400),
        ("/clients/99999999999999999/score", f"Bearer {OFFICER_KEY}", 400),
        ("/clients/987654321/score", f"Bearer {OFFICER_KEY}", 404),
        ("/clients/987654321/score", None, 401),
    ],
)
def test_errors_are_the_routes_errors(served, path, authorization, status):
    assert same_answer(served, path.format(cid=served[2][0]), authorization)[0] == status


def test_unavailable_model_log_and_crash_answer_as_litestar_would(served, monkeypatch):
    app = served[0]
    svc = app.service
    path, key = f"/clients/{served[2][1]}/score", f"Bearer {OFFICER_KEY}"

    async def log_down(rows, in_flight=None):
        raise predlog.PredictionLogError("disk full")

    monkeypatch.setattr(svc.writer, "commit", log_down)
    assert same_answer(served, path, key) == (503, {"error": "prediction log unavailable", "detail": "disk full"})
    monkeypatch.undo()

    def crash(*_a, **_k):
        raise RuntimeError("boom")

    monkeypatch.setattr(svc, "score_query", crash)
    assert same_answer(served, path, key) == (500, {"error": "internal server error", "detail": None})
    monkeypatch.undo()

    monkeypatch.setattr(svc, "model", None)
    monkeypatch.setattr(svc, "model_error", "no model here")
    assert same_answer(served, path, key) == (503, {"error": "model unavailable", "detail": "no model here"})


def test_other_shapes_go_through_litestar(served):
    cid = served[2][0]
    status, _h, body = get(served, f"/clients/{cid}/score", f"Bearer {OFFICER_KEY}", query=b"verbose=1")
    assert status == 400
    assert json.loads(body) == {"error": "unknown query parameters", "detail": {"unknown": ["verbose"]}}
    status, _h, body = get(served, f"/clients/{cid}", f"Bearer {OFFICER_KEY}")
    assert status == 200 and json.loads(body)["client_id"] == cid


SEGMENT = st.text(alphabet=st.sampled_from("0123456789-+ .x%é\x00"), min_size=1, max_size=20)
AUTH = st.one_of(
    st.none(),
    st.sampled_from([f"Bearer {OFFICER_KEY}", f"bearer  {ADMIN_KEY} ", f"Bearer {OFFICER_KEY}x", "Bearer", ""]),
    st.text(max_size=30),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segment=st.one_of(SEGMENT, st.integers(1, 2**53 + 10).map(str)), authorization=AUTH)
def test_any_id_and_key_get_litestars_answer(served, segment, authorization):
    same_answer(served, f"/clients/{segment}/score", authorization)
