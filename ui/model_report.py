"""The model page's figures in words people read: translated metric names, the comparison table and the
four charts of report.html (ROC, reliability, cost against threshold, score bands) as ECharts options.

Everything comes from GET /model (the manifest): the rows are built by app.model.report.rows, the
one owner of which models are compared; this module only names and draws them.
"""

from __future__ import annotations

import re
from typing import Any

from app.model.report import rows as report_rows
from app.scoring.bundle import Manifest, document_manifest
from app.scoring.sections import Evaluation, Reliability
from ui import categories, locale

LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "oof_auc": "AUC honnête (hors échantillon)",
        "auc_folds": "AUC par pli (moyenne ± écart type)",
        "cost_per_client": "Coût métier par client (seuil validé croisé)",
        "brier": "Score de Brier (après calibration)",
        "ece": "Erreur de calibration attendue",
        "log_loss": "Log-loss (après calibration)",
        "calibration": "Calibration",
        "champion": "Modèle retenu",
        "why": "Pourquoi",
        "forced": "Forcé malgré une politique triviale moins coûteuse",
        "model": "Modèle",
        "role": "Rôle",
        "auc": "AUC",
        "cost": "Coût / client",
        "brier_short": "Brier",
        "sensitive": "Attributs sensibles",
        "sensitive_excluded": "Exclus du modèle : {attrs} ({n} variables). Effet mesuré sur les mêmes plis :",
        "sensitive_included": "Gardés dans le modèle : {attrs} ({n} variables). Effet mesuré sur les mêmes plis :",
        "with_sensitive": "avec ces variables",
        "without_sensitive": "sans ces variables",
        "variant": "Variante",
        "comparison": "Comparaison honnête des modèles",
        "roc": "Courbe ROC (hors échantillon)",
        "reliability": "Fiabilité : probabilité prédite et taux de défaut observé",
        "cost_curve": "Coût par client selon le seuil (point : seuil retenu)",
        "bands": "Taux de défaut observé par décile de score",
        "fpr": "Taux de faux positifs",
        "tpr": "Taux de vrais positifs",
        "predicted": "Probabilité prédite",
        "observed": "Taux de défaut observé",
        "threshold": "Seuil",
        "decile": "Décile de score (1 : risque le plus faible)",
        "before": "Avant calibration",
        "after": "Après calibration",
        "chosen": "Seuil retenu",
        "lightgbm": "LightGBM optimisé",
        "scorecard": "Grille de score logistique (WoE)",
        "blend": "Mélange LightGBM et grille de score",
        "logistic_regression": "Régression logistique (référence)",
        "accept_all": "Accepter tout le monde",
        "refuse_all": "Refuser tout le monde",
        "champion_role": "retenu",
        "candidate": "candidat",
        "baseline": "référence",
        "trivial": "politique triviale",
        "platt": "Platt",
        "none": "aucune",
        "report_link": "Rapport complet du modèle",
    },
    "en": {
        "oof_auc": "Honest AUC (out-of-fold)",
        "auc_folds": "AUC per fold (mean ± std)",
        "cost_per_client": "Business cost per client (cross-fitted threshold)",
        "brier": "Brier score (after calibration)",
        "ece": "Expected calibration error",
        "log_loss": "Log-loss (after calibration)",
        "calibration": "Calibration",
        "champion": "Champion",
        "why": "Why",
        "forced": "Forced although a trivial policy costs less",
        "model": "Model",
        "role": "Role",
        "auc": "AUC",
        "cost": "Cost / client",
        "brier_short": "Brier",
        "sensitive": "Sensitive attributes",
        "sensitive_excluded": "Excluded from the model: {attrs} ({n} features). Effect on the same folds:",
        "sensitive_included": "Kept in the model: {attrs} ({n} features). Effect on the same folds:",
        "with_sensitive": "with these features",
        "without_sensitive": "without these features",
        "variant": "Variant",
        "comparison": "Honest comparison of the models",
        "roc": "ROC curve (out-of-fold)",
        "reliability": "Reliability: predicted probability and observed default rate",
        "cost_curve": "Cost per client against the threshold (dot: chosen threshold)",
        "bands": "Observed default rate per score decile",
        "fpr": "False positive rate",
        "tpr": "True positive rate",
        "predicted": "Predicted probability",
        "observed": "Observed default rate",
        "threshold": "Threshold",
        "decile": "Score decile (1: lowest risk)",
        "before": "Before calibration",
        "after": "After calibration",
        "chosen": "Chosen threshold",
        "lightgbm": "Tuned LightGBM",
        "scorecard": "Logistic scorecard (WoE)",
        "blend": "Blend of LightGBM and scorecard",
        "logistic_regression": "Logistic regression (baseline)",
        "accept_all": "Accept everybody",
        "refuse_all": "Refuse everybody",
        "champion_role": "champion",
        "candidate": "candidate",
        "baseline": "baseline",
        "trivial": "trivial policy",
        "platt": "Platt",
        "none": "none",
        "report_link": "Full model report",
    },
}


def tr(key: str, lang: str) -> str:
    return LABELS.get(lang, LABELS["en"]).get(key, key)


def _num(v: Any, lang: str, digits: int = 4) -> str:
    """A figure with `digits` decimals in the page's number format ('0,5674' in French), a dash when missing."""
    return locale.fixed(v, lang, digits)


def has_evaluation(model: Manifest | dict) -> bool:
    model = document_manifest(model)
    return model.evaluation != Evaluation() and bool(model.candidates)


def headline(model: Manifest | dict, lang: str) -> list[tuple[str, str]]:
    """Tiles: champion, honest AUC, AUC per fold, honest cost, Brier, ECE, calibration (translated names)."""
    model = document_manifest(model)
    m = model.metrics
    champ = model.champion.kind if model.champion is not None else ""
    cal = (model.calibration.method if model.calibration is not None else None) or "none"
    return [
        (tr("champion", lang), tr(champ, lang)),
        (tr("oof_auc", lang), _num(m.oof_auc, lang)),
        (tr("auc_folds", lang), f"{_num(m.auc_mean, lang)} ± {_num(m.auc_std, lang)}"),
        (tr("cost_per_client", lang), _num(m.cost_per_client, lang)),
        (tr("brier", lang), _num(m.brier, lang)),
        (tr("ece", lang), _num(m.ece, lang)),
        (tr("calibration", lang), tr(cal, lang)),
    ]


def comparison(model: Manifest | dict, lang: str) -> list[dict[str, str]]:
    """Rows of the comparison table (candidates, baselines, trivial policies), display text."""
    out = []
    for r in report_rows(model):
        role = "champion_role" if r["role"] == "champion" else r["role"]
        out.append(
            {
                "model": tr(r["kind"], lang),
                "role": tr(role, lang),
                "auc": _num(r.get("auc"), lang),
                "cost": _num(r.get("cost"), lang),
                "brier": _num(r.get("brier"), lang),
            }
        )
    return out


def sensitive(model: Manifest | dict, lang: str) -> tuple[str, list[dict[str, str]]] | None:
    """The manifest's sensitive-attributes record: a sentence and the with/without rows (honest AUC, cost)."""
    rec = document_manifest(model).sensitive
    effect = rec.effect if rec is not None else None
    if not effect:
        return None
    n = sum(len(v) for v in (rec.features or {}).values())
    sentence = tr("sensitive_excluded" if rec.excluded else "sensitive_included", lang).format(
        attrs=", ".join(categories.attribute(a, lang) for a in rec.attributes or []), n=n
    )
    rows = [
        {
            "variant": tr(key, lang),
            "auc": _num(side.oof_auc if side is not None else None, lang),
            "cost": _num(side.cost_per_client if side is not None else None, lang),
        }
        for key, side in (("with_sensitive", effect.with_), ("without_sensitive", effect.without))
    ]
    return sentence, rows


def _axes(x_name: str, y_name: str, y_max: float | None = None) -> dict:
    y_axis: dict[str, Any] = {"type": "value", "name": y_name, "nameLocation": "middle", "nameGap": 40, "min": 0}
    if y_max is not None:
        y_axis["max"] = y_max
    return {
        "aria": {"enabled": True},
        "grid": {"left": 56, "right": 16, "top": 32, "bottom": 44},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "value", "name": x_name, "nameLocation": "middle", "nameGap": 28, "min": 0},
        "yAxis": y_axis,
    }


def roc_option(model: Manifest | dict, lang: str) -> dict:
    ev = document_manifest(model).evaluation
    opt = _axes(tr("fpr", lang), tr("tpr", lang), 1)
    opt["xAxis"]["max"] = 1
    opt["series"] = [
        {"type": "line", "showSymbol": False, "name": tr("roc", lang), "data": ev.roc or []},
        {
            "type": "line",
            "showSymbol": False,
            "data": [[0, 0], [1, 1]],
            "lineStyle": {"type": "dashed", "color": "#999"},
        },
    ]
    return opt


def reliability_option(model: Manifest | dict, lang: str) -> dict:
    rel = document_manifest(model).evaluation.reliability or Reliability()
    pts = {
        k: [[round(r.predicted, 4), round(r.observed, 4)] for r in bins]
        for k, bins in (("uncalibrated", rel.uncalibrated), ("calibrated", rel.calibrated))
        if bins is not None
    }
    top = max([p for series in pts.values() for pair in series for p in pair] or [1.0])
    opt = _axes(tr("predicted", lang), tr("observed", lang))
    opt["legend"] = {"top": 0}
    opt["series"] = [
        {"type": "line", "name": tr("before", lang), "data": pts.get("uncalibrated", [])},
        {"type": "line", "name": tr("after", lang), "data": pts.get("calibrated", [])},
        {
            "type": "line",
            "showSymbol": False,
            "data": [[0, 0], [top, top]],
            "lineStyle": {"type": "dashed", "color": "#999"},
        },
    ]
    return opt


def cost_option(model: Manifest | dict, lang: str) -> dict:
    ev = document_manifest(model).evaluation
    chosen = ev.chosen
    opt = _axes(tr("threshold", lang), tr("cost", lang))
    opt["series"] = [
        {"type": "line", "showSymbol": False, "name": tr("cost", lang), "data": ev.cost_curve or []},
        {
            "type": "scatter",
            "name": tr("chosen", lang),
            "symbolSize": 12,
            "data": [[chosen.threshold, chosen.cost_per_client]] if chosen is not None else [],
        },
    ]
    return opt


def bands_option(model: Manifest | dict, lang: str) -> dict:
    bands = document_manifest(model).evaluation.score_bands or []
    return {
        "aria": {"enabled": True},
        "grid": {"left": 56, "right": 16, "top": 16, "bottom": 44},
        "tooltip": {"trigger": "axis"},
        "xAxis": {
            "type": "category",
            "name": tr("decile", lang),
            "nameLocation": "middle",
            "nameGap": 28,
            "data": [str(i + 1) for i in range(len(bands))],  # numbered 1 to 10, as in report.html's table
        },
        "yAxis": {"type": "value", "name": tr("observed", lang), "nameLocation": "middle", "nameGap": 40},
        "series": [{"type": "bar", "data": [round(b.default_rate, 4) for b in bands]}],
    }


def charts(model: Manifest | dict, lang: str) -> list[tuple[str, dict]]:
    model = document_manifest(model)
    return [
        (tr("roc", lang), roc_option(model, lang)),
        (tr("reliability", lang), reliability_option(model, lang)),
        (tr("cost_curve", lang), cost_option(model, lang)),
        (tr("bands", lang), bands_option(model, lang)),
    ]


# ---- the champion's reason (written in English by app.model.train.choose_champion), in the reader's language ----

_LOWEST = re.compile(r"lowest honest cost per client \(([0-9.]+)\)(?: vs (\S+) ([0-9.]+))?")
_SAME = re.compile(r"same honest cost as (\S+), higher out-of-fold AUC")
_TIE = re.compile(
    r"honest cost per client ([0-9.]+) ties with (\S+)'s ([0-9.]+) \(paired difference ([-+0-9.]+) ± ([0-9.]+), within"
    r" two standard errors\) and its out-of-fold AUC is higher \(([0-9.]+) vs ([0-9.]+)\)"
)


def champion_why(why: str, lang: str) -> str:
    """The reason the champion was chosen, in `lang`, its numbers in the locale's format; a reason of another form
    is shown as it is, marked untranslated."""
    if lang != "fr":
        return why
    num = lambda text: locale.fixed(float(text), lang, 4)  # noqa: E731
    name = lambda kind: f"« {tr(kind, lang)} »"  # noqa: E731 - a candidate by its French name
    m = _LOWEST.fullmatch(why)
    if m:
        cost, other, other_cost = m.groups()
        text = f"coût honnête par client le plus bas ({num(cost)})"
        if other and num(other_cost) == num(cost):
            return text + f", à égalité avec {name(other)} à la 4e décimale (départagé par l'AUC hors échantillon)"
        return text + (f" contre {num(other_cost)} pour {name(other)}" if other else "")
    m = _SAME.fullmatch(why)
    if m:
        return f"même coût honnête que {name(m.group(1))}, AUC hors échantillon plus élevée"
    m = _TIE.fullmatch(why)
    if m:
        cost, other, other_cost, diff, se, auc, other_auc = m.groups()
        return (
            f"coût honnête par client {num(cost)}, à égalité avec les {num(other_cost)} de {name(other)} "
            f"(écart apparié {locale.fixed(float(diff), lang, 4)} ± {num(se)}, dans deux écarts-types) et AUC hors "
            f"échantillon plus élevée ({num(auc)} contre {num(other_auc)})"
        )
    return f"{why} (non traduit)"
