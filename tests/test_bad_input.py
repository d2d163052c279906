"""Bad input against a real server: a clear 4xx with the one error shape {"error", "detail"}, no traceback text,
and the database unchanged (prediction_log row count and a checksum of `features`, before and after).

Hypothesis sends random bytes, random JSON and random path/query text to every operation of the OpenAPI
schema: never a 5xx. (Schema-driven invalid input, schemathesis' NEGATIVE mode, is already run for every
operation by tests/test_schemathesis.py::test_operation_conforms_to_schema, so it is not repeated here.)
"""

from __future__ import annotations

import json
import string
from urllib.parse import quote

import httpx
import pytest
from apiserver import ADMIN, OFFICER
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loadgen import db_state

BATCH_MAX = 1000  # the default CREDIT_BATCH_MAX
BODY_MAX = 1_048_576  # the default CREDIT_BODY_MAX
POST_PATHS = ["/score", "/score/batch", "/explain"]


@pytest.fixture(scope="module")
def http(api):
    with api.client(headers=ADMIN) as client:
        yield client


@pytest.fixture
def unchanged(data, api):
    """The test must leave the database exactly as it found it (no log row, features untouched)."""
    before = db_state(data.db)
    yield
    assert db_state(data.db) == before
    assert "Traceback" not in api.output()


def assert_4xx(r: httpx.Response, status: int | None = None) -> dict:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    if status is not None:
        assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error", "detail"} and isinstance(body["error"], str) and body["error"], body
    assert "Traceback" not in r.text and 'File "' not in r.text
    return body


# ---- malformed JSON, wrong types, unknown fields, non-finite and out-of-range numbers ------------------------

MALFORMED = [
    b"",
    b"{",
    b'{"features": {',
    b'{"features": {"a": 1',
    b"[]",
    b'[{"features": {}}]',
    b"null",
    b"0",
    b'"features"',
    b"{'features': {}}",
    b'{"features": {}}garbage',
    b"\xff\xfe\x00",
    b'{"features": {}, "features": {}',
]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("path", POST_PATHS)
@pytest.mark.parametrize("body", MALFORMED, ids=[repr(b)[:30] for b in MALFORMED])
def test_malformed_json_is_400(http, path, body):
    assert_4xx(http.post(path, content=body, headers={"content-type": "application/json"}), 400)


def _bad_bodies(names: list[str]) -> list[tuple[str, object]]:
    f = names[0]
    return [
        ("features null", {"features": None}),
        ("features string", {"features": "x"}),
        ("features list", {"features": [1, 2]}),
        ("value string", {"features": {f: "1.5"}}),
        ("value bool", {"features": {f: True}}),
        ("value list", {"features": {f: [1]}}),
        ("value object", {"features": {f: {"v": 1}}}),
        ("unknown top-level field", {"features": {}, "extra": 1}),
        ("unknown feature", {"features": {"no_such_feature": 1.0}}),
        ("missing features", {}),
        ("float32 overflow", {"features": {f: 3.5e38}}),
        ("float32 overflow negative", {"features": {f: -1e39}}),
    ]


@pytest.mark.usefixtures("unchanged")
def test_wrong_types_and_unknown_fields_are_400(http, known):
    for label, body in _bad_bodies(known[1]):
        for path in ("/score", "/explain"):
            assert_4xx(http.post(path, json=body), 400), label
        assert_4xx(http.post("/score/batch", json={"applicants": [body]}), 400), label
    for bad in ({"client_ids": [1], "applicants": [{"features": {}}]}, {"client_ids": None}, {"client_ids": []},
                {"applicants": []}, {"client_ids": "1"}, {"client_ids": [1], "x": 1}, {}):  # fmt: skip
        assert_4xx(http.post("/score/batch", json=bad), 400)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("literal", ["NaN", "-NaN", "Infinity", "-Infinity", "inf", "nan", "1e400", "-1e400",
                                     "1e309", "0x10", "01", "1.", ".5", "+1"])  # fmt: skip
def test_non_finite_and_out_of_range_numbers_are_400(http, known, literal):
    f = known[1][0]
    body = f'{{"features": {{"{f}": {literal}}}}}'.encode()
    for path in ("/score", "/explain"):
        assert_4xx(http.post(path, content=body, headers={"content-type": "application/json"}), 400)
    batch = f'{{"applicants": [{{"features": {{"{f}": {literal}}}}}]}}'.encode()
    assert_4xx(http.post("/score/batch", content=batch, headers={"content-type": "application/json"}), 400)


# ---- size limits ----------------------------------------------------------------------------------------------


def _huge(names: list[str]) -> bytes:
    body = b'{"features": {"' + names[0].encode() + b'": 1.0}}'
    return body + b" " * (2 * BODY_MAX)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("path", POST_PATHS)
def test_huge_body_with_content_length_is_413(http, known, path):
    assert_4xx(http.post(path, content=_huge(known[1]), headers={"content-type": "application/json"}), 413)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("path", POST_PATHS)
def test_huge_chunked_body_is_413(http, known, path):
    payload = _huge(known[1])

    def chunks():
        for i in range(0, len(payload), 64 << 10):
            yield payload[i : i + 64 << 10]

    r = http.post(path, content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert_4xx(r, 413)


@pytest.mark.usefixtures("unchanged")
def test_batch_over_the_limit_is_400(http, known):
    cid = known[0]
    body = assert_4xx(http.post("/score/batch", json={"client_ids": [cid] * (BATCH_MAX + 1)}), 400)
    assert str(BATCH_MAX) in body["error"] or body["detail"]
    assert_4xx(http.post("/score/batch", json={"applicants": [{"features": {}}] * (BATCH_MAX + 1)}), 400)


# ---- client ids ----------------------------------------------------------------------------------------------

BAD_IDS = ["-1", "0", "-0", str(2**53 + 1), str(2**63), "99999999999999999999999", "7.0", "7e0", "true", "null",
           "0x7", "07", " 7", "7 ", "+7", "٧", "7%00", "%2e%2e"]  # fmt: skip
GET_ID_PATHS = ["/clients/{}", "/clients/{}/score", "/clients/{}/features", "/clients/{}/explain"]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("raw", BAD_IDS)
def test_bad_client_ids_in_path_are_4xx(http, raw):
    for template in GET_ID_PATHS:
        path = template.format(quote(raw, safe="%"))
        r = http.get(path)
        assert_4xx(r)
        assert r.status_code in (400, 404, 405), (path, r.status_code)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("value", [-1, 0, 2**53 + 1, 2**64, 7.0, "7", "7.0", "true", True, None, [7], {"id": 7}, 1e400])
def test_bad_client_ids_in_batch_are_400(http, value):
    body = json.dumps({"client_ids": [value]}) if value != 1e400 else '{"client_ids": [1e400]}'
    assert_4xx(http.post("/score/batch", content=body, headers={"content-type": "application/json"}), 400)


@pytest.mark.usefixtures("unchanged")
def test_unknown_but_valid_client_id_is_404_and_batch_names_it(http, known):
    assert_4xx(http.get(f"/clients/{2**53}/score"), 404)
    body = assert_4xx(http.post("/score/batch", json={"client_ids": [known[0], 2**53]}), 404)
    assert 2**53 in body["detail"]["client_ids"]


# ---- SQL injection in path and query parameters ---------------------------------------------------------------

INJECTIONS = [
    "1; DROP TABLE features",
    "1 OR 1=1",
    "1' OR '1'='1",
    "1); DELETE FROM features; --",
    "1 UNION SELECT x FROM features",
    "'; UPDATE features SET x = zeroblob(4); --",
    '" OR ""="',
    "1/**/OR/**/1=1",
]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("attack", INJECTIONS)
def test_sql_injection_in_path_and_query_is_4xx(http, attack):
    q = quote(attack, safe="")
    for template in GET_ID_PATHS:
        assert_4xx(http.get(template.format(q)))
    for params in ({"prefix": attack}, {"limit": attack}, {"prefix": "1", "limit": attack}):
        assert_4xx(http.get("/clients", params=params), 400)
    assert_4xx(http.get("/population", params={"features": attack}), 400)
    assert_4xx(http.get("/population", params={"limit": attack}), 400)
    assert_4xx(http.get("/monitoring/log", params={"limit": attack}), 400)
    for name in ("since", "until"):
        assert_4xx(http.get("/monitoring/summary", params={name: attack}), 400)
    assert_4xx(http.get("/monitoring/drift", params={"last": attack}), 400)
    assert_4xx(http.get("/clients", params={attack: "1"}), 400)  # unknown query parameter name
    assert_4xx(http.post("/score", json={"features": {attack: 1.0}}), 400)


# ---- hypothesis: garbage against every operation -> never a 5xx ------------------------------------------------

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                database=None)  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def operations(http) -> list[tuple[str, str]]:
    schema = http.get("/schema/openapi.json").json()
    ops = [(m.upper(), p) for p, item in schema["paths"].items() for m in item if m in ("get", "post", "put", "delete")]
    assert ("POST", "/score") in ops and len(ops) >= 10
    return ops


class Fuzz:
    """Counts what the fuzzing sent and got, so the log check can allow the garbage that was valid."""

    def __init__(self, http: httpx.Client, known: tuple[int, list[str]]):
        self.http, self.cid = http, known[0]
        self.scored = 0

    def check(self, r: httpx.Response) -> None:
        assert r.status_code < 500, (r.request.method, str(r.request.url)[:200], r.status_code, r.text[:300])
        assert "Traceback" not in r.text
        if r.status_code >= 400 and r.request.method != "HEAD":
            body = r.json()
            assert set(body) == {"error", "detail"}, body
        elif r.status_code != 200:
            pass
        elif r.request.method == "POST" and r.request.url.path in ("/score", "/score/batch"):
            self.scored += len(r.json().get("results", [None]))
        elif r.request.method == "GET" and r.request.url.path.endswith("/score"):
            self.scored += 1

    def path(self, template: str, segment: str) -> str:
        return template.replace("{client_id}", segment)


@pytest.fixture(scope="module")
def fuzz(http, known) -> Fuzz:
    return Fuzz(http, known)


@pytest.fixture
def log_accounted(data, fuzz):
    """The features never change; the log grows by exactly the number of scores answered 200."""
    before, scored0 = db_state(data.db), fuzz.scored
    yield
    after = db_state(data.db)
    assert after["features_sha256"] == before["features_sha256"]
    assert after["log_rows"] - before["log_rows"] == fuzz.scored - scored0


@pytest.mark.slow
@pytest.mark.usefixtures("log_accounted")
def test_random_bytes_bodies_never_5xx(fuzz, operations):
    posts = [p for m, p in operations if m == "POST"]

    ctypes = st.sampled_from(["application/json", "text/plain", "application/octet-stream"])

    @FUZZ
    @given(path=st.sampled_from(posts), body=st.binary(max_size=300), ctype=ctypes)
    def run(path, body, ctype):
        fuzz.check(fuzz.http.post(path, content=body, headers={"content-type": ctype}))

    run()


@pytest.mark.slow
@pytest.mark.usefixtures("log_accounted")
def test_random_json_bodies_never_5xx(fuzz, operations, known):
    posts = [p for m, p in operations if m == "POST"]
    names = st.sampled_from(known[1][:20]) | st.text(max_size=10)
    value = st.none() | st.floats() | st.integers() | st.booleans() | st.text(max_size=5)
    features = st.dictionaries(names, value, max_size=4)
    shaped = st.fixed_dictionaries({"features": features}) | st.fixed_dictionaries(
        {"client_ids": st.lists(st.integers() | st.floats() | st.text(max_size=3), max_size=4)}
    )

    @FUZZ
    @given(path=st.sampled_from(posts), body=JSON | shaped)
    def run(path, body):
        raw = json.dumps(body, allow_nan=True).encode()  # NaN/Infinity literals on purpose
        fuzz.check(fuzz.http.post(path, content=raw, headers={"content-type": "application/json"}))

    run()


@pytest.mark.slow
@pytest.mark.usefixtures("log_accounted")
def test_random_path_and_query_never_5xx(fuzz, operations):
    gets = [p for m, p in operations if m == "GET" and p not in ("/readyz",)]
    text = st.text(alphabet=st.characters(codec="utf-8"), max_size=25)
    keys = st.sampled_from(["prefix", "limit", "since", "until", "last", "features", "top", "lang"]) | text

    @FUZZ
    @given(
        path=st.sampled_from(gets),
        segment=text | st.integers().map(str),
        params=st.dictionaries(keys, text, max_size=3),
    )
    def run(path, segment, params):
        url = fuzz.path(path, quote(segment, safe="") or "x")
        fuzz.check(fuzz.http.get(url, params=params))

    run()


@pytest.mark.slow
@pytest.mark.usefixtures("log_accounted")
def test_random_headers_and_methods_never_5xx(fuzz, operations):
    # header values: printable ASCII without leading/trailing white space (httpx refuses those itself)
    ascii_text = st.text(alphabet=string.printable.strip() + " ", max_size=40).map(str.strip)

    methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])

    @FUZZ
    @given(op=st.sampled_from(operations), method=methods, auth=ascii_text, ctype=ascii_text)
    def run(op, method, auth, ctype):
        url = fuzz.path(op[1], str(fuzz.cid))
        headers = {"authorization": auth, "content-type": ctype}
        fuzz.check(fuzz.http.request(method, url, headers=headers, content=b'{"features": {}}'))

    run()


def test_officer_key_gets_the_same_error_shapes(api, known):
    with api.client(headers=OFFICER) as http:
        assert_4xx(http.post("/score", content=b"{", headers={"content-type": "application/json"}), 400)
        assert_4xx(http.get("/monitoring/log"), 403)


# ---- the issue-18 list: invalid UTF-8, deep nesting, ?lang, /schema 404s ---------------------------------------


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "body_of",
    [
        lambda f, cid: b'{"features": {"a\xff": 1}}',
        lambda f, cid: b'{"features": {"' + f.encode() + b'": "\xc3\x28"}}',
        lambda f, cid: b'{"features": {"' + f.encode() + b'": ' + _deep(1000) + b"}}",
        lambda f, cid: b'{"features": {"' + f.encode() + b'": ' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}}",
    ],
    ids=["utf8-key", "utf8-value", "depth-1000", "depth-5000"],
)
def test_invalid_utf8_and_deep_nesting_are_400_everywhere(http, known, body_of):
    cid, names = known
    body = body_of(names[0], cid)
    batch = b'{"applicants": [' + body + b"]}"
    whatif = body.replace(b'{"features"', b'{"application"', 1)
    for path, content in (("/score", body), ("/explain", body), ("/score/batch", batch),
                          (f"/clients/{cid}/what-if", whatif)):  # fmt: skip
        assert_4xx(http.post(path, content=content, headers={"content-type": "application/json"}), 400)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("lang", ["fr%0A", "en%0A", "fr%00", "FR", "fr ", "de", ""])
def test_lang_must_match_exactly(http, known, lang):
    cid, names = known
    assert_4xx(http.get(f"/clients/{cid}/explain?lang={lang}"), 400)
    assert_4xx(http.post(f"/explain?lang={lang}", json={"features": {}}), 400)


@pytest.mark.parametrize("path", ["/schema/nothing", "/schema/swagger", "/schema/openapi.yaml.bak", "/schema/x/y"])
def test_unknown_schema_pages_are_json_404(http, path):
    assert_4xx(http.get(path), 404)
