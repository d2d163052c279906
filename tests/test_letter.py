"""Decision letters (app/rights/letter.py, `credit letter`): built from the logged decision (what was served, even
after a model promotion and once that model's files are gone), the principal reasons of the model that decided,
one A4 page in PDF, French and English, every letter recorded."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import apsw
import numpy as np
import pytest
from cli_accounts import as_env
from click.testing import CliRunner
from decisions import refused, serve, vectors
from needs import needs

from app import store as stores
from app.cli.main import cli
from app.model.explain import Explainer
from app.rights import records
from app.rights.pdf import page_count
from app.rights.records import Actor
from app.rights.service import issue
from app.scoring.bundle import ModelBundle

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
OFFICER = Actor("Alice Martin", "officer")
LEVERS = ("credit_amount", "term", "coborrower_income")


@pytest.fixture
def env(pipeline_copy):
    env = pipeline_copy
    env.log_db = env.root / "credit-log.db"
    env.bundle = ModelBundle.load(env.model_dir)
    return env


def letter_of(env, ref, lang="fr", fmt="json", actor=OFFICER):
    store = stores.open_store(env.log_db)
    try:
        return issue(
            store,
            ref,
            actor=actor,
            channel="cli",
            lang=lang,
            fmt=fmt,
            serving=env.model_dir,
            data_db=env.db,
            levers=LEVERS,
        )
    finally:
        store.close()


def test_the_letter_states_what_the_log_says_was_served(env):
    """A logged probability that is not what the model would say today (0.734): the letter states the logged one
    and its decision, never a re-score."""
    cid = refused(env.bundle, env.db, 1)[0]
    rid = serve(env.log_db, env.bundle, env.db, cid, probability=0.734)
    got = letter_of(env, rid, lang="en")
    d = got.facts["decision"]
    assert (d["request_id"], d["client_id"], d["probability"], d["decision"]) == (rid, cid, 0.734, "refuse")
    assert "73.4%" in got.html and env.bundle.model_id[:12] in got.html
    assert got.facts["decision_in_force"] == "refuse"
    # by client id: the client's latest decision
    rid2 = serve(env.log_db, env.bundle, env.db, cid)
    assert letter_of(env, str(cid)).facts["decision"]["request_id"] == rid2


def test_reasons_are_the_deciding_models_exact_shap_at_most_four(env):
    cid = refused(env.bundle, env.db, 1)[0]
    rid = serve(env.log_db, env.bundle, env.db, cid)
    got = letter_of(env, rid, lang="fr")
    explainer = Explainer.from_bundle(env.bundle)
    x = vectors(env.db, [cid])[cid]
    expected = explainer.explain(x, top=4, lang="fr")["reasons"]
    assert 1 <= len(got.facts["reasons"]) <= 4
    assert got.facts["reasons"] == [r["sentence"] for r in expected]
    for sentence in got.facts["reasons"]:
        assert sentence.replace("'", "&#x27;") in got.html


def test_letter_after_a_promotion_still_shows_the_model_that_decided(env):
    """Decision by model A; B is installed and promoted; the letter names A with A's reasons. Then A's files are
    removed: the letter (frozen at first issue) still says the same."""
    from app.model.compile import compile_model
    from app.scoring.challenger import install_challenger, promote
    from benchmarks.bench_shadow import perturbed_copy

    a = env.bundle
    cid = refused(a, env.db, 1)[0]
    rid = serve(env.log_db, a, env.db, cid)
    first = letter_of(env, rid, lang="en")
    src = perturbed_copy(env.model_dir, env.root / "next")
    b = install_challenger(src, env.model_dir, lambda f: compile_model(f, progress=False, tl2cgen_reference=False))
    promote(env.model_dir)
    assert ModelBundle.load(env.model_dir).model_id == b.model_id != a.model_id
    after = letter_of(env, rid, lang="en")
    assert after.facts["decision"]["model_id"] == a.model_id
    assert after.facts["reasons"] == first.facts["reasons"]
    assert a.model_id[:12] in after.html and b.model_id[:12] not in after.html
    # a decision of B's now has B's id
    rid_b = serve(env.log_db, ModelBundle.load(env.model_dir), env.db, cid)
    assert letter_of(env, rid_b).facts["decision"]["model_id"] == b.model_id
    # A's files gone (every bundle folder of A, and the plain folder's own files): the frozen letter stands
    for folder in (env.model_dir / "bundles").iterdir():
        if json.loads((folder / "manifest.json").read_text())["model_id"] == a.model_id:
            shutil.rmtree(folder)
    again = letter_of(env, rid, lang="en")
    assert again.facts["reasons"] == first.facts["reasons"]
    assert again.facts["decision"] == first.facts["decision"]


def test_a_decision_never_explained_whose_model_is_gone_is_a_clear_error(env):
    cid = refused(env.bundle, env.db, 1)[0]
    rid = serve(env.log_db, env.bundle, env.db, cid)
    conn = apsw.Connection(str(env.log_db))
    conn.execute("UPDATE prediction_log SET model_id = ? WHERE request_id = ?", ("f" * 64, rid))
    conn.close()
    with pytest.raises(records.RightsError, match="no longer in"):
        letter_of(env, rid)


def test_every_letter_is_recorded_and_kept_as_issued(env):
    cid = refused(env.bundle, env.db, 1)[0]
    rid = serve(env.log_db, env.bundle, env.db, cid)
    got_fr = letter_of(env, rid, lang="fr", fmt="html")
    got_en = letter_of(env, rid, lang="en", fmt="json", actor=Actor("Bob Durand", "risk"))
    conn = stores.open_store(env.log_db)
    try:
        rows = conn.execute(
            "SELECT id, issued_by, role, channel, request_id, client_id, lang, format, content FROM letters ORDER BY id"
        ).fetchall()
        assert [(r[1], r[2], r[4], r[5], r[6], r[7]) for r in rows] == [
            ("Alice Martin", "officer", rid, cid, "fr", "html"),
            ("Bob Durand", "risk", rid, cid, "en", "json"),
        ]
        assert [r[0] for r in rows] == [got_fr.letter_id, got_en.letter_id]
        assert json.loads(rows[0][8])["reasons"] == got_fr.facts["reasons"]
        events = conn.execute("SELECT actor, action, request_id FROM rights_events ORDER BY id").fetchall()
        assert events == [("Alice Martin", "letter issued", rid), ("Bob Durand", "letter issued", rid)]
        for sql in ("UPDATE letters SET decision = 'accept'", "DELETE FROM letters", "DELETE FROM rights_events"):
            with pytest.raises(apsw.ConstraintError):
                conn.execute(sql)
    finally:
        conn.close()


def test_both_languages_say_the_same_facts(env):
    cid = refused(env.bundle, env.db, 1)[0]
    rid = serve(env.log_db, env.bundle, env.db, cid)
    fr, en = letter_of(env, rid, lang="fr", fmt="html"), letter_of(env, rid, lang="en", fmt="html")
    assert fr.facts["decision"] == en.facts["decision"]
    assert len(fr.facts["reasons"]) == len(en.facts["reasons"])
    assert "Vos droits" in fr.html and "2023/2225" in fr.html and "RGPD" in fr.html
    assert "Your rights" in en.html and "2023/2225" in en.html and "GDPR" in en.html
    assert 'lang="fr"' in fr.html and 'lang="en"' in en.html


def test_the_counterfactual_on_the_letter_flips_the_decision(env):
    """The first refused client (nearest the threshold first) whose letter offers a change: the change, replayed
    through the what-if path, is accepted by the model that decided."""
    from app.data.whatif import what_if
    from app.scoring.db import connect

    for cid in refused(env.bundle, env.db, 40):
        rid = serve(env.log_db, env.bundle, env.db, cid)
        got = letter_of(env, rid, lang="en", fmt="html")
        if got.facts["counterfactual"]["status"] == "found":
            break
    else:
        pytest.fail("no refused client's letter offered a change")
    assert got.facts["counterfactual"]["changes"] and "What would change the decision" in got.html
    conn = stores.open_store(env.log_db)
    exp = conn.execute("SELECT counterfactual FROM decision_explanations WHERE request_id = ?", (rid,)).fetchall()
    conn.close()
    cf = json.loads(exp[0][0])
    data = connect(env.db, readonly=True)
    try:
        x = vectors(env.db, [cid])[cid]
        changed, _ = what_if(data, cid, cf["after"], env.bundle.feature_names, x)
    finally:
        data.close()
    assert not env.bundle.refuses(env.bundle.predict_row(changed))


@needs("chromium", "just system-deps")
def test_pdf_is_one_a4_page_in_both_languages(env):
    cid = refused(env.bundle, env.db, 1)[0]
    rid = serve(env.log_db, env.bundle, env.db, cid)
    ARTIFACTS.mkdir(exist_ok=True)
    for lang in ("fr", "en"):
        got = letter_of(env, rid, lang=lang, fmt="pdf")
        assert got.pdf is not None and page_count(got.pdf) == 1
        path = ARTIFACTS / f"letter-{lang}.pdf"
        path.write_bytes(got.pdf)
        if shutil.which("pdfinfo"):  # poppler's own count and page size agree
            info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
            pages = next(line for line in info.splitlines() if line.startswith("Pages:"))
            assert pages.split(":")[1].strip() == "1", info
            size = next(line for line in info.splitlines() if line.startswith("Page size"))
            w, h = (float(v) for v in size.split(":")[1].split("pts")[0].split(" x "))
            assert (round(w), round(h)) == (595, 842), size  # A4 in points
        if shutil.which("pdftoppm"):  # a picture to look at
            subprocess.run(
                ["pdftoppm", "-png", "-r", "60", "-singlefile", str(path), str(path.with_suffix(""))], check=True
            )
            assert path.with_suffix(".png").stat().st_size > 10_000


def store_rows(path: Path, sql: str) -> list[tuple]:
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return [tuple(r) for r in conn.execute(sql).fetchall()]
    finally:
        conn.close()


def test_cli_letter(env):
    cid = refused(env.bundle, env.db, 1)[0]
    rid = serve(env.log_db, env.bundle, env.db, cid)
    base = ["--db", str(env.db), "--model", str(env.model_dir), "--log-db", str(env.log_db)]
    as_alice = ["--as", "alice", *base]
    out = CliRunner().invoke(cli, ["letter", rid, "--lang", "en", "--json", *as_alice], env=as_env(env.root, "alice"))
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["decision"]["request_id"] == rid and doc["lang"] == "en" and doc["letter_id"] >= 1
    html_path = env.root / "l.html"
    out = CliRunner().invoke(
        cli, ["letter", str(cid), "--html", str(html_path), *as_alice], env=as_env(env.root, "bob")
    )
    assert out.exit_code == 1 and "wrong account name or password for 'alice'" in out.output  # bob's password
    out = CliRunner().invoke(
        cli, ["letter", str(cid), "--html", str(html_path), *as_alice], env=as_env(env.root, "alice")
    )
    assert out.exit_code == 0 and "Vos droits" in html_path.read_text()
    issued = store_rows(env.log_db, "SELECT issued_by, role, channel FROM letters ORDER BY id")
    assert issued == [("alice", "officer", "cli")] * 2  # the verified account and its role, not a flag
    bad = CliRunner().invoke(cli, ["letter", "nosuchrequest", *as_alice], env=as_env(env.root, "alice"))
    assert bad.exit_code == 1 and "no logged decision with request id nosuchrequest" in bad.output


def test_the_store_survives_a_reimport_of_the_data(env):
    """The data file is replaced (what `credit ingest` does, by rename): letters and explanations stay in the
    operational store, and the letter still states the same facts; a decision first explained after its client's
    data changed offers no counterfactual about data that is no longer the logged one."""
    cid = refused(env.bundle, env.db, 1)[0]
    rid = serve(env.log_db, env.bundle, env.db, cid)
    rid_later = serve(env.log_db, env.bundle, env.db, cid)
    first = letter_of(env, rid, lang="fr")
    new = env.root / "new.db"
    shutil.copy(env.db, new)
    conn = apsw.Connection(str(new))
    x = vectors(env.db, [cid])[cid]
    x[0] = np.float32(x[0] + 1 if not np.isnan(x[0]) else 1.0)
    conn.execute("UPDATE features SET x = ? WHERE client_id = ?", (x.astype("<f4").tobytes(), cid))
    conn.close()
    new.replace(env.db)
    again = letter_of(env, rid, lang="fr")
    assert again.facts["decision"] == first.facts["decision"] and again.facts["reasons"] == first.facts["reasons"]
    later = letter_of(env, rid_later, lang="en")
    assert later.facts["counterfactual"]["status"] == "unavailable"
    assert "data changed since the decision" in later.facts["counterfactual"]["text"]
    conn = stores.open_store(env.log_db)
    try:
        assert conn.execute("SELECT count(*) FROM letters").fetchall()[0][0] == 3
    finally:
        conn.close()
