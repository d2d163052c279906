"""The model bundle (app.scoring.bundle): one verified owner of the model folder and of the decision rule."""

from __future__ import annotations

import ctypes
import json
import shutil
from pathlib import Path

import fakemodel as fm
import httpx
import numpy as np
import pytest
from apiserver import ADMIN, OFFICER, ApiServer, copy_pipeline
from hypothesis import given, settings
from hypothesis import strategies as st
from needs import needs

from app.model.compile import compile_model, prepare_model_dir
from app.scoring.bundle import DataMismatchError, ModelBundle, ModelError, decide, manifest_digest, refuses
from app.scoring.db import connect, read_meta, verify_data

pytestmark = needs("gcc", "Debian package gcc")
MODELS = Path(__file__).parent / "models"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bundle") / "model"
    fm.make_model_dir(d, p=16, n=1500, n_trees=12)
    return d


@pytest.fixture
def copy(model, tmp_path) -> Path:
    d = tmp_path / "m"
    shutil.copytree(model, d, symlinks=True)
    return d


def _edit(d: Path, fn) -> None:
    m = json.loads((d / "manifest.json").read_text())
    fn(m)
    (d / "manifest.json").write_text(json.dumps(m))


def test_a_compiled_folder_loads_once_verified(model):
    b = ModelBundle.load(model, require_text=True)
    raw = json.loads((model / "manifest.json").read_text())
    assert b.model_id == raw["model_id"] and b.threshold == raw["threshold"]
    assert b.digest == manifest_digest(raw)
    assert b.model._lib.credit_manifest_sha256().decode() == b.digest
    assert b.library_path.name == raw["library"]["file"]
    assert b.reference_rows().shape[1] == b.n_features
    assert b.decide(b.threshold) == "refuse" and b.decide(np.nextafter(b.threshold, 0)) == "accept"


TAMPERING = {
    "threshold edited": (lambda d: _edit(d, lambda m: m.update(threshold=0.9)), "threshold 0.9 differs"),
    "calibration added": (lambda d: _edit(d, lambda m: m.update(calibration={"a": 1.5, "b": 0.1})), "manifest differs"),
    "feature renamed": (
        lambda d: _edit(d, lambda m: m["features"].__setitem__(0, "SOMETHING_ELSE")),
        "manifest differs",
    ),
    "feature list shortened": (lambda d: _edit(d, lambda m: m.update(features=m["features"][:-1])), "features"),
    "model id edited": (lambda d: _edit(d, lambda m: m.update(model_id="f" * 64)), "is not the model id"),
    "model.txt byte changed": (
        lambda d: (d / "model.txt").write_bytes((d / "model.txt").read_bytes().replace(b"tree", b"Tree", 1)),
        "is not the model id",
    ),
    "library bytes changed": (lambda d: _flip(d / _lib(d)), "refusing to load"),
    "manifest not JSON": (lambda d: (d / "manifest.json").write_text("{"), "unreadable manifest"),
    "threshold not a number": (lambda d: _edit(d, lambda m: m.update(threshold="high")), "invalid manifest"),
}


def _lib(d: Path) -> str:
    return json.loads((d / "manifest.json").read_text())["library"]["file"]


def _flip(path: Path) -> None:
    b = bytearray(path.read_bytes())
    b[len(b) // 2] ^= 0xFF
    path.write_bytes(bytes(b))


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_any_tampering_is_refused_at_load_with_its_name(copy, case):
    tamper, message = TAMPERING[case]
    tamper(copy)
    with pytest.raises(ModelError, match=message):
        ModelBundle.load(copy)


def test_a_library_from_another_model_is_refused(copy, tmp_path):
    other = prepare_model_dir(MODELS / "none_only.txt", tmp_path / "other")
    compile_model(other, progress=False, tl2cgen_reference=False)
    so = _lib(other)
    shutil.copy(other / so, copy / so)
    _edit(
        copy,
        lambda m: m["library"].update(
            file=so, sha256=json.loads((other / "manifest.json").read_text())["library"]["sha256"]
        ),
    )
    with pytest.raises(ModelError, match="library is for model"):
        ModelBundle.load(copy)


def test_missing_model_text_is_refused_only_when_required(copy):
    (copy / "model.txt").unlink()
    ModelBundle.load(copy)  # scoring needs only the library
    with pytest.raises(ModelError, match="missing"):
        ModelBundle.load(copy, require_text=True)


# ---- the decision rule: Python and C agree on every edge ----------------------------------------------------


@pytest.fixture(scope="module")
def c_rule(model):
    return ModelBundle.load(model).model._lib.credit_refuses


@settings(max_examples=400, deadline=None)
@given(
    t=st.floats(0.0, 1.0, allow_nan=False),
    step=st.sampled_from([-2, -1, 0, 1, 2]),
    p=st.floats(0.0, 1.0, allow_nan=False),
)
def test_python_and_c_decision_rules_agree_at_every_edge(c_rule, t, step, p):
    near = t
    for _ in range(abs(step)):
        near = float(np.nextafter(near, np.inf if step > 0 else -np.inf))
    for q in (near, p):
        assert bool(c_rule(ctypes.c_double(q), ctypes.c_double(t))) == refuses(q, t)
        assert decide(q, t) == ("refuse" if c_rule(ctypes.c_double(q), ctypes.c_double(t)) else "accept")
    arr = np.array([near, p, t])
    assert refuses(arr, t).tolist() == [refuses(float(v), t) for v in arr]


# ---- the data a model was trained on ---------------------------------------------------------------------------


def test_other_data_is_refused_unless_allowed(pipeline):
    bundle = ModelBundle.load(pipeline.model_dir)
    conn = connect(pipeline.db, readonly=True)
    try:
        meta = read_meta(conn)
        assert verify_data(conn, bundle) is None
        assert bundle.manifest.schema_fingerprint == meta["schema_fingerprint"]
        names = bundle.feature_names
        other = {**meta, "schema_fingerprint": "0" * 64, "source": "csv:loans.csv"}
        with pytest.raises(DataMismatchError, match="trained on home-credit.*holds csv:loans.csv"):
            bundle.check_data(other, names, db_label="x.db")
        with pytest.raises(DataMismatchError, match="different order"):
            bundle.check_data(meta, [names[1], names[0], *names[2:]], db_label="x.db")
        assert "feature definitions differ" in bundle.check_data(other, names, db_label="x.db", allow_other=True)
    finally:
        conn.close()


def test_api_sql_and_cli_refuse_a_database_of_other_data(pipeline, tmp_path):
    from click.testing import CliRunner

    from app.cli.sql import score_command

    data = copy_pipeline(pipeline, tmp_path)
    conn = connect(data.db)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_fingerprint'", ("0" * 64,))
    cid = conn.execute("SELECT min(client_id) FROM features").fetchone()[0]
    conn.close()
    args = [str(cid), "--db", str(data.db), "--model", str(data.model_dir)]
    res = CliRunner().invoke(score_command, args)
    assert res.exit_code == 1 and "feature definitions differ" in res.output, res.output
    res = CliRunner().invoke(score_command, [*args, "--allow-other-data"])
    assert res.exit_code == 0 and "warning" in res.output, res.output
    with ApiServer(data.db, data.model_dir, wait_for="/healthz") as api, api.client(headers=OFFICER) as http:
        ready = http.get("/readyz", headers=ADMIN)
        assert ready.status_code == 503 and "feature definitions differ" in ready.json()["error"]
        assert http.get(f"/clients/{cid}/score").status_code == 503


def test_every_surface_gives_the_same_decision(pipeline, tmp_path):
    """SQL decision(), the bundle's rule on the compiled score, `credit score` and the API agree."""
    from click.testing import CliRunner

    from app.cli.sql import score_command

    data = copy_pipeline(pipeline, tmp_path)
    bundle = ModelBundle.load(data.model_dir)
    conn = connect(data.db, bundle, readonly=True)
    rows = conn.execute("SELECT client_id, score(client_id), decision(client_id) FROM features").fetchall()
    conn.close()
    assert all(d == bundle.decide(p) for _cid, p, d in rows)
    # the clients nearest the threshold are where two rules would disagree
    edge = sorted(rows, key=lambda r: abs(r[1] - bundle.threshold))[:25]
    with ApiServer(data.db, data.model_dir) as api, httpx.Client(base_url=api.url, headers=OFFICER) as http:
        for cid, p, d in edge:
            body = http.get(f"/clients/{cid}/score").json()
            assert (body["probability"], body["decision"]) == (p, d)
    for cid, _p, d in edge[:5]:
        res = CliRunner().invoke(
            score_command, [str(cid), "--json", "--db", str(data.db), "--model", str(data.model_dir)]
        )
        assert json.loads(res.output)["decision"] == d
