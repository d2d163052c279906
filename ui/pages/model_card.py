"""The model card (/model-card), in French or English, rendered from the card's structured data: the manifest
(GET /model, `ModelInfo`) and the training-time fairness (GET /model/fairness, `FairnessReport`), never the
English Markdown of `credit train`. Every number goes through ui/locale.py; a part the manifest does not record is
left out rather than shown as "not recorded"."""

from __future__ import annotations

import asyncio

import msgspec
from nicegui import ui

from app.scoring.bundle import Manifest, document_manifest
from app.scoring.sections import Calibration
from ui import locale
from ui.api_client import ApiError
from ui.i18n import feature_label, t
from ui.model_report import tr
from ui.pages.common import api, error_box, frame, lang, login_redirect

TEXT = {
    "fr": {
        "identity": "Identité",
        "model_id": "Identifiant du modèle",
        "trained_at": "Entraîné le",
        "app_version": "Version de l'application",
        "use": "Usage prévu",
        "use_text": (
            "Aide à la décision d'octroi de crédit à la consommation : une probabilité de défaut et une décision"
            " proposée, expliquées, que le chargé de clientèle examine avec le client. Le modèle ne décide pas seul"
            " et ne s'applique qu'à des demandes semblables aux données d'entraînement."
        ),
        "data": "Données",
        "clients": "Clients étiquetés : {n}, dont {d} en défaut.",
        "features": "Variables",
        "n_features": "{n} variables, agrégées par client en SQL.",
        "top": "Les plus influentes : {names}.",
        "performance": "Performance honnête (hors échantillon)",
        "auc": "AUC hors échantillon : {auc}",
        "folds": "AUC par pli : {mean} ± {std} sur {k} plis",
        "cost": "Coût métier par client au seuil : {cost} (au seuil 0,5 : {cost05})",
        "calibration": "Calibration",
        "calibration_text": "Probabilités calibrées par la méthode : {method}.",
        "threshold": "Seuil et coûts",
        "threshold_text": "Refus quand la probabilité de défaut atteint {thr}.",
        "costs_text": "Coûts : accepter un client qui fera défaut {fn}, refuser un bon client {fp}.",
        "fairness": "Équité à l'entraînement (hors échantillon)",
        "limits": "Limites connues",
        "limits_text": (
            "Entraîné sur des données d'une autre époque et d'un autre pays : à surveiller (dérive, performance"
            " réalisée). Les groupes protégés sont examinés, pas garantis. Une probabilité n'est pas une certitude."
        ),
        "versions": "Versions",
    },
    "en": {
        "identity": "Identity",
        "model_id": "Model id",
        "trained_at": "Trained on",
        "app_version": "App version",
        "use": "Intended use",
        "use_text": (
            "Decision support for consumer credit: a probability of default and a proposed decision, explained,"
            " which the loan officer reviews with the client. The model does not decide alone and applies only to"
            " applications like its training data."
        ),
        "data": "Data",
        "clients": "Labelled clients: {n}, of whom {d} defaulted.",
        "features": "Features",
        "n_features": "{n} features, aggregated per client in SQL.",
        "top": "Most influential: {names}.",
        "performance": "Honest performance (out-of-fold)",
        "auc": "Out-of-fold AUC: {auc}",
        "folds": "AUC per fold: {mean} ± {std} over {k} folds",
        "cost": "Business cost per client at the threshold: {cost} (at 0.5: {cost05})",
        "calibration": "Calibration",
        "calibration_text": "Probabilities calibrated with: {method}.",
        "threshold": "Threshold and costs",
        "threshold_text": "Refused when the probability of default reaches {thr}.",
        "costs_text": "Costs: accepting a client who defaults {fn}, refusing a good client {fp}.",
        "fairness": "Fairness at training (out-of-fold)",
        "limits": "Known limitations",
        "limits_text": (
            "Trained on data from another time and country: to be monitored (drift, realised performance)."
            " Protected groups are examined, not guaranteed. A probability is not a certainty."
        ),
        "versions": "Versions",
    },
}


def card_sections(model: Manifest | dict, lg: str) -> list[tuple[str, list[str]]]:
    """(heading, paragraphs) of the card from the manifest, in `lg`; parts the manifest lacks are left out."""
    x = TEXT[lg]
    model = document_manifest(model)
    m = model.metrics
    sections = [
        (
            x["identity"],
            [f"{x['model_id']} : {model.model_id}" if lg == "fr" else f"{x['model_id']}: {model.model_id}"]
            + ([f"{x['trained_at']} {locale.when(model.trained_at, lg)}"] if model.trained_at else [])
            + ([f"{x['app_version']} {model.app_version}"] if model.app_version else []),
        ),
        (x["use"], [x["use_text"]]),
    ]
    if m.n_train is not None:
        sections.append(
            (
                x["data"],
                [x["clients"].format(n=locale.number(m.n_train, lg), d=locale.number(m.positives, lg))],
            )
        )
    names = [feature_label(n, lg) for n, _v in model.global_importance[:8]]
    sections.append(
        (
            x["features"],
            [x["n_features"].format(n=locale.number(model.n_features or len(model.features), lg))]
            + ([x["top"].format(names=", ".join(names))] if names else []),
        )
    )
    perf = []
    if m.oof_auc is not None:
        perf.append(x["auc"].format(auc=locale.fixed(m.oof_auc, lg, 4)))
    if m.auc_mean is not None:
        perf.append(
            x["folds"].format(
                mean=locale.fixed(m.auc_mean, lg, 4),
                std=locale.fixed(m.auc_std, lg, 4),
                k="?" if m.folds is None else m.folds,
            )
        )
    if m.cost_per_client is not None:
        perf.append(
            x["cost"].format(
                cost=locale.fixed(m.cost_per_client, lg, 4),
                cost05=locale.fixed(m.cost_per_client_at_0_5, lg, 4),
            )
        )
    if perf:
        sections.append((x["performance"], perf))
    method = _calibration_method(model.calibration)
    if method:
        sections.append((x["calibration"], [x["calibration_text"].format(method=tr(method, lg))]))
    costs = model.costs
    sections.append(
        (
            x["threshold"],
            [x["threshold_text"].format(thr=locale.percent(model.threshold, lg))]
            + (
                [x["costs_text"].format(fn=locale.number(costs["fn"], lg, 2), fp=locale.number(costs["fp"], lg, 2))]
                if "fn" in costs and "fp" in costs
                else []
            ),
        )
    )
    sections.append((x["limits"], [x["limits_text"]]))
    versions = model.versions
    if versions:
        sections.append((x["versions"], [", ".join(f"{k} {v}" for k, v in sorted(versions.items()))]))
    return sections


def _calibration_method(cal: Calibration | None) -> str | None:
    """The calibration's method as the card names it; None when the manifest records no calibration."""
    return None if cal is None else cal.method or "platt"


@ui.page("/model-card", response_timeout=60)
async def model_card_page():
    """The model card for anyone logged in, from GET /model and GET /model/fairness."""
    if (redirect := login_redirect()) is not None:
        return redirect
    from ui.pages.monitoring import show_fairness  # the same tables as the live fairness section

    lg = lang()
    main = await frame("model", t("model_card", lg))
    with main:
        client = api()
        model_t = asyncio.create_task(client.model())
        fairness_t = asyncio.create_task(client.model_fairness())
        try:
            model = msgspec.to_builtins(await model_t)
        except ApiError as e:
            fairness_t.cancel()
            error_box(e, lg)
            return
        with ui.card().classes("w-full").props("data-testid=model-card"):
            for heading, paragraphs in card_sections(model, lg):
                ui.label(heading).classes("text-lg font-bold mt-2").props("role=heading aria-level=2")
                for text in paragraphs:
                    ui.label(text).style("overflow-wrap:anywhere")
                if heading == TEXT[lg]["threshold"]:
                    ui.label(TEXT[lg]["fairness"]).classes("text-lg font-bold mt-2").props("role=heading aria-level=2")
                    try:
                        show_fairness(msgspec.to_builtins(await fairness_t), lg)
                    except ApiError as e:
                        error_box(e if e.kind != "not_found" else t("not_available", lg), lg)
