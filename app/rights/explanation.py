"""The reasons, the data used and the counterfactual of a LOGGED decision, computed once and frozen in the store.

What was served is the prediction_log row: its vector, probability, decision and model id. The reasons are a
pure function of (model, vector): the exact TreeSHAP of the logged vector under the model whose id the row
names, found among the serving folder's bundles (`find_bundle`: champion, challenger, previous, then every folder
of bundles/), never the current champion in its place. The first letter of a decision freezes the result in
`decision_explanations`; every later letter reads it from there, so a letter keeps saying what was served after a
promotion, and even once that model's files are gone.

The counterfactual (app.rights.counterfactual) needs the client's raw application, read from the data database:
it is computed only when the client's stored vector is still the logged one (otherwise the data changed since the
decision and a suggestion would be about other data: `status` "unavailable" with the reason).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import apsw
import numpy as np

from app.rights.records import RightsError, logged_vector

TOP_REASONS = 4  # adverse action practice: the principal reasons, at most four
DATA_ROWS = 10  # rows of "the data used" on the letter (the export has every value)
# application inputs a client can check, shown first when the model uses them
KEY_INPUTS = ("AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE", "CREDIT_TERM_MONTHS")


def find_bundle(serving: Path | str, model_id: str):
    """The verified bundle (app.scoring.bundle.ModelBundle) whose model id is `model_id`, from the serving folder
    (its roles first, then every bundle folder), or None."""
    from app.scoring import layout
    from app.scoring.bundle import ModelBundle, ModelError, read_manifest

    serving = Path(serving)
    seen: list[Path] = []
    for role in layout.ROLES:
        try:
            folder = layout.role_dir(serving, role)
        except Exception:  # noqa: BLE001 - a broken link: look further
            folder = None
        if folder is not None:
            seen.append(folder)
    root = serving / layout.BUNDLES
    if root.is_dir():
        seen += sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in dict.fromkeys(Path(os.path.realpath(p)) for p in seen):
        try:
            found = read_manifest(folder)[0].model_id
        except ModelError:
            continue
        if found == model_id:
            return ModelBundle.load(folder)
    return None


def frozen(store: apsw.Connection, request_id: str) -> dict[str, Any] | None:
    from app.rights.records import _row

    out = _row(store.execute("SELECT * FROM decision_explanations WHERE request_id = ?", (request_id,)))
    if out is None:
        return None
    for k in ("reasons", "data_used", "counterfactual"):
        out[k] = json.loads(out[k]) if out[k] else None
    return out


def _value(v: float) -> float | None:
    return None if np.isnan(v) else float(v)


def explain_decision(
    store: apsw.Connection,
    row: dict[str, Any],
    serving: Path | str,
    data_db: Path | str | None,
    levers: tuple[str, ...],
) -> dict[str, Any]:
    """The frozen explanation of a logged decision `row` (records.decision), computing and freezing it first."""
    have = frozen(store, row["request_id"])
    if have is not None:
        return have
    bundle = find_bundle(serving, row["model_id"])
    if bundle is None:
        raise RightsError(
            f"the model {row['model_id'][:12]} that decided {row['request_id']} is no longer in {serving} and its"
            " reasons were never frozen: the letter cannot state them",
            409,
        )
    from app.model.explain import Explainer

    x = np.frombuffer(logged_vector(store, row["request_id"]), dtype="<f4").copy()
    if x.size != bundle.n_features:
        raise RightsError(f"the logged vector of {row['request_id']} does not fit model {row['model_id'][:12]}", 409)
    explainer = Explainer.from_bundle(bundle)
    contrib = explainer.shap_values(x)[0][:-1]
    names = bundle.feature_names
    order = [int(i) for i in np.argsort(-np.abs(contrib), kind="stable")]
    reasons = [
        {
            "feature": names[i],
            "value": _value(x[i]),
            "shap": float(contrib[i]),
            "typical": _value(np.float64(explainer.typical_of(i))),
            "unit": explainer.unit_of(i),
        }
        for i in order
        if contrib[i] > 0
    ][:TOP_REASONS]
    index = {n: i for i, n in enumerate(names)}
    shown = [index[n] for n in KEY_INPUTS if n in index]
    shown += [i for i in order if i not in shown][: max(0, DATA_ROWS - len(shown))]
    data_used = [{"feature": names[i], "value": _value(x[i]), "unit": explainer.unit_of(i)} for i in shown]
    counterfactual = _counterfactual(bundle, row, x, data_db, levers)
    store.execute(
        "INSERT OR IGNORE INTO decision_explanations (request_id, model_id, computed_at, threshold, reasons, data_used,"
        " counterfactual) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            row["request_id"],
            row["model_id"],
            time.time(),
            float(bundle.threshold),
            json.dumps(reasons),
            json.dumps(data_used),
            json.dumps(counterfactual),
        ),
    )
    return frozen(store, row["request_id"])  # type: ignore[return-value]


def _counterfactual(bundle, row: dict, x: np.ndarray, data_db, levers: tuple[str, ...]) -> dict[str, Any]:
    from app.rights.counterfactual import CounterfactualError, Result, Searcher

    if row["decision"] != "refuse":
        return Result(status="accepted already", probability=row["probability"]).as_dict()
    if row["client_id"] is None or data_db is None or not Path(data_db).is_file():
        return Result(status="unavailable", reason="an applicant without a stored application").as_dict()
    from app.scoring.db import connect

    conn = connect(Path(data_db), readonly=True)
    try:
        stored = conn.execute("SELECT x FROM features WHERE client_id = ?", (row["client_id"],)).fetchall()
        if not stored or np.frombuffer(stored[0][0], dtype="<f4").tobytes() != x.astype("<f4").tobytes():
            return Result(status="unavailable", reason="the client's data changed since the decision").as_dict()
        try:
            searcher = Searcher(bundle, levers)
        except CounterfactualError as exc:
            return Result(status="unavailable", reason=str(exc)).as_dict()
        return searcher.search(conn, row["client_id"], x, probability=row["probability"]).as_dict()
    finally:
        conn.close()
