"""Explanations of one client's score: exact TreeSHAP contributions and refusal reasons in words.

The contributions come from LightGBM's own TreeSHAP (`Booster.predict(x, pred_contrib=True)`), which
is exact for trees and agrees with `shap.TreeExplainer` (tests/test_explain.py checks both); it is
the faster of the two on one row (see `credit explain` timings in the report / README), so it is
the one used here. Contributions are in the model's calibrated margin (log-odds) space: with the
manifest's Platt map (a, b), every contribution is scaled by a and the base value is a * base + b, so
    base_value + sum(shap) == margin, probability == sigmoid(margin) == the calibrated score().

A *reason* is a feature that pushes the client towards refusal (positive SHAP), told as a sentence
that compares the client's value with a typical accepted client: the median of that feature over
the reference rows (manifest reference sample) whose reference score is below the threshold.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import click
import numpy as np

from app.bundle import decide
from app.db import connect
from app.model.labels import label, label_for, reason_sentence
from app.options import CLIENT_ID, db_option, model_option


class ExplainError(ValueError):
    pass


_CACHE: dict[tuple[str, str], Explainer] = {}
_LOCK = threading.Lock()


def _sigmoid(m: float) -> float:
    if m >= 0:
        return 1.0 / (1.0 + math.exp(-m))
    e = math.exp(m)
    return e / (1.0 + e)


def _none_if_nan(v: float) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v


class Explainer:
    """Holds the booster and the typical accepted values; one per model (see `load`)."""

    def __init__(self, booster, manifest: dict, model_dir: Path, typical: np.ndarray) -> None:
        self.booster = booster
        self.manifest = manifest
        self.model_dir = model_dir
        self.model_id: str = manifest.get("model_id", "")
        self.feature_names: list[str] = list(manifest["features"])
        self.n_features = len(self.feature_names)
        self.threshold = float(manifest.get("threshold", 0.5))
        cal = manifest.get("calibration") or {}  # Platt map p = sigmoid(a * margin + b), owned by the manifest
        self.cal_a, self.cal_b = float(cal.get("a", 1.0)), float(cal.get("b", 0.0))
        self.typical = typical  # float64[p], NaN when unknown
        self._index = {n: i for i, n in enumerate(self.feature_names)}
        self.units = [label_for(n).unit for n in self.feature_names]

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, model_dir: str | Path) -> Explainer:
        """The explainer of the verified model in `model_dir` (app.bundle.ModelBundle.load)."""
        from app.bundle import ModelBundle, ModelError

        try:
            bundle = ModelBundle.load(model_dir, require_text=True)
        except ModelError as exc:
            raise ExplainError(str(exc)) from None
        return cls.from_bundle(bundle)

    @classmethod
    def from_bundle(cls, bundle) -> Explainer:
        """Load (or reuse) the explainer of a verified bundle; cached per (model id, manifest digest)."""
        key = (bundle.model_id, bundle.digest)
        with _LOCK:
            hit = _CACHE.get(key)
        if hit is not None:
            return hit
        explainer = cls._build(bundle)
        with _LOCK:
            return _CACHE.setdefault(key, explainer)

    @classmethod
    def _build(cls, bundle) -> Explainer:
        import lightgbm as lgb

        from app.bundle import ModelError

        try:
            text = bundle.model_text()  # re-checked against the model id
        except ModelError as exc:
            raise ExplainError(str(exc)) from None
        booster = lgb.Booster(model_str=text)
        names = bundle.feature_names
        if booster.num_feature() != len(names):
            raise ExplainError(f"model.txt has {booster.num_feature()} features, manifest lists {len(names)}")
        typical, binary = cls._typical_values(bundle)
        explainer = cls(booster, bundle.raw_manifest, bundle.model_dir, typical)
        explainer.units = ["flag" if b else label_for(n).unit for n, b in zip(names, binary, strict=True)]
        return explainer

    @staticmethod
    def _typical_values(bundle) -> tuple[np.ndarray, np.ndarray]:
        """(median of each feature over reference rows scored below the threshold (accepted),
        whether each column only holds 0/1 in the reference sample)."""
        p = bundle.n_features
        nothing = (np.full(p, np.nan), np.zeros(p, dtype=bool))
        X = bundle.reference_rows()
        if X is None or X.ndim != 2 or X.shape[1] != p:
            return nothing
        finite = np.where(np.isnan(X), 0, X)
        binary = np.all((finite == 0) | (finite == 1), axis=0) & np.any(finite == 1, axis=0)
        scores = bundle.reference_scores()
        if scores is not None and len(scores) == len(X):
            accepted = X[~bundle.refuses(scores)]
            if len(accepted):
                X = accepted
        with np.errstate(all="ignore"):
            out = np.full(p, np.nan)
            has = ~np.all(np.isnan(X), axis=0)
            out[has] = np.nanmedian(X[:, has].astype(np.float64), axis=0)
        return out, binary

    # ------------------------------------------------------------------ inputs
    def vector(self, mapping: dict[str, float | None]) -> np.ndarray:
        """float32 vector in model order from {name: value|None}; absent names are NaN."""
        unknown = [k for k in mapping if k not in self._index]
        if unknown:
            raise ExplainError(f"unknown feature(s): {', '.join(sorted(unknown)[:10])}")
        x = np.full(self.n_features, np.nan, dtype=np.float32)
        for k, v in mapping.items():
            if v is not None:
                x[self._index[k]] = v
        return x

    def _as_row(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 1 or x.shape[0] != self.n_features:
            raise ExplainError(f"expected a vector of {self.n_features} features, got shape {x.shape}")
        return x

    # ------------------------------------------------------------------ SHAP
    def shap_values(self, X: np.ndarray) -> np.ndarray:
        """TreeSHAP via LightGBM: float64[n, p+1], last column = base value (calibrated margin space)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        out = np.asarray(self.booster.predict(X, pred_contrib=True, num_threads=1), dtype=np.float64)
        if (self.cal_a, self.cal_b) != (1.0, 0.0):  # calibrated log-odds: contributions scale by a
            out[:, :-1] *= self.cal_a
            out[:, -1] = self.cal_a * out[:, -1] + self.cal_b
        return out

    def margin(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        raw = np.asarray(self.booster.predict(X, raw_score=True, num_threads=1), dtype=np.float64)
        return self.cal_a * raw + self.cal_b

    # ------------------------------------------------------------------ explanation
    def explain(self, x, top: int = 4, lang: str = "fr") -> dict:
        """Contributions of every feature (sorted by |shap|) and up to `top` refusal reasons."""
        if lang not in ("fr", "en"):
            raise ExplainError(f"lang must be fr or en, not {lang!r}")
        x = self._as_row(x)
        contrib = self.shap_values(x)[0]
        shap, base = contrib[:-1], float(contrib[-1])
        margin = base + float(shap.sum())
        order = np.argsort(-np.abs(shap), kind="stable")
        names = self.feature_names
        contributions = [
            {
                "feature": names[i],
                "label": label(names[i], lang),
                "value": _none_if_nan(x[i]),
                "shap": float(shap[i]),
            }
            for i in order
        ]
        reasons = []
        for i in order:
            if len(reasons) >= max(top, 0):
                break
            if shap[i] <= 0:
                continue
            typ = _none_if_nan(self.typical[i])
            reasons.append(
                {
                    "feature": names[i],
                    "sentence": reason_sentence(names[i], _none_if_nan(x[i]), typ, lang, unit=self.units[i]),
                    "shap": float(shap[i]),
                    "typical": typ,
                }
            )
        probability = _sigmoid(margin)
        return {
            "model_id": self.model_id,
            "base_value": base,
            "margin": margin,
            "probability": probability,
            "threshold": self.threshold,
            "decision": decide(probability, self.threshold),
            "contributions": contributions,
            "reasons": reasons,
        }

    def explain_mapping(self, features: dict[str, float | None], top: int = 4, lang: str = "fr") -> dict:
        """Explain an applicant given as {name: value|None} (POST /explain)."""
        return self.explain(self.vector(features), top=top, lang=lang)


def client_vector(conn, client_id: int, n_features: int | None = None) -> np.ndarray | None:
    """The client's feature vector from the `features` table, or None for an unknown client."""
    row = conn.execute("SELECT x FROM features WHERE client_id = ?", (int(client_id),)).fetchone()
    if row is None:
        return None
    x = np.frombuffer(row[0], dtype="<f4").astype(np.float32)
    if n_features is not None and x.shape[0] != n_features:
        raise ExplainError(
            f"features.x of client {client_id} has {x.shape[0]} values, the model expects {n_features}"
            " (database and model do not match: re-run `credit train`)"
        )
    return x


def explain_client(conn, explainer: Explainer, client_id: int, top: int = 4, lang: str = "fr") -> dict | None:
    """Explanation of a known client (None when unknown), with its client_id."""
    x = client_vector(conn, client_id, explainer.n_features)
    if x is None:
        return None
    out = explainer.explain(x, top=top, lang=lang)
    return {"client_id": int(client_id), **out}


def _check_feature_names(conn, explainer: Explainer) -> None:
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM feature_names ORDER BY idx")]
    except Exception:  # table missing: nothing to compare
        return
    if names and names != explainer.feature_names:
        raise click.ClickException(
            "the database's feature_names differ from the model manifest's features: re-run `credit train`"
        )


@click.command("explain")
@click.argument("client_id", type=CLIENT_ID)
@click.option(
    "--top", default=4, show_default=True, type=click.IntRange(0, 100), help="reasons and contributions shown"
)
@click.option("--lang", type=click.Choice(["fr", "en"]), default=None, help="language [default: CREDIT_LANG, fr]")
@click.option("--json", "as_json", is_flag=True, help="print the whole explanation as JSON")
@db_option
@model_option
def explain_command(client_id: int, top: int, lang: str | None, as_json: bool, db, model_dir) -> None:
    """Explain one client's score: SHAP contributions and the main reasons for refusal."""

    from app.config import load_settings

    settings = load_settings(db=db, model_dir=model_dir)
    lang = lang or settings.lang
    if not settings.db_path.exists():
        raise click.ClickException(f"{settings.db_path}: database not found (run `credit ingest` first)")
    try:
        explainer = Explainer.load(settings.model_path)
    except ExplainError as e:
        raise click.ClickException(str(e)) from None
    conn = connect(settings.db_path, readonly=True)
    try:
        _check_feature_names(conn, explainer)
        try:
            out = explain_client(conn, explainer, client_id, top=top, lang=lang)
        except ExplainError as e:
            raise click.ClickException(str(e)) from None
    finally:
        conn.close()
    if out is None:
        raise click.ClickException(f"client {client_id} not found in {settings.db_path}")
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    fr = lang == "fr"
    decision = out["decision"]
    word = {"accept": "accepté" if fr else "accept", "refuse": "refusé" if fr else "refuse"}[decision]
    click.echo(
        f"{'Client' if not fr else 'Client'} {client_id}: "
        f"{'probabilité de défaut' if fr else 'default probability'} {out['probability']:.3f} "
        f"({'seuil' if fr else 'threshold'} {out['threshold']:.3f}) -> {word}"
    )
    if out["reasons"]:
        click.echo("Principales raisons de risque :" if fr else "Main risk reasons:")
        for r in out["reasons"]:
            click.echo(f"  - {r['sentence']}")
    else:
        click.echo("Aucun facteur ne pousse vers le refus." if fr else "No feature pushes towards refusal.")
    n = min(top, len(out["contributions"]))
    if n:
        click.echo(
            f"Contributions au logit (positives : vers le refus), les {n} principales :"
            if fr
            else f"Contributions (log-odds; positive: towards refusal), top {n}:"
        )
    width = max((len(c["label"]) for c in out["contributions"][:n]), default=10)
    for c in out["contributions"][:n]:
        v = ("non renseigné" if fr else "missing") if c["value"] is None else f"{c['value']:.6g}"
        click.echo(f"  {c['label']:<{width}}  {c['shap']:+.4f}  ({c['feature']} = {v})")
    if fr:
        click.echo(f"  valeur de base : {out['base_value']:+.4f} ; marge : {out['margin']:+.4f}")
    else:
        click.echo(f"  base value: {out['base_value']:+.4f}; margin: {out['margin']:+.4f}")
