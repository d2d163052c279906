"""The API's errors in the officer's words: every error the dashboard can surface, as a French and an English
sentence, never the API's English text in a French page.

The API answers every error in one shape, {"error": text, "detail": null or an object} (app/service/http.py);
its `error` texts are the API's own, written in English for developers. This module is the one owner of their
translation: CATALOGUE pairs an HTTP status and the shape of an `error` text (a regular expression over the whole
text) with a stable code and its two sentences, which may quote the detail's client id, column or feature (through
the locale layer and the feature labels). An error of no known shape gets a visible fallback sentence naming only
its HTTP status, so a French page never shows the raw English; tests/test_api_errors_ui.py checks that every error
text the API's code can raise on the dashboard's paths has an entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ui import locale


@dataclass(frozen=True)
class Known:
    code: str
    statuses: tuple[int, ...]
    pattern: re.Pattern[str]
    fr: str
    en: str


def _k(code: str, status: int | tuple[int, ...], pattern: str, fr: str, en: str) -> Known:
    return Known(code, status if isinstance(status, tuple) else (status,), re.compile(pattern, re.S), fr, en)


# {client_id}, {column}, {feature}, {what}, {role}, {rows}, {min_rows} come from the error's detail or text
CATALOGUE: tuple[Known, ...] = (
    # ---- the client's file
    _k(
        "unknown_client",
        404,
        r"unknown client",
        "Aucun dossier ne porte l'identifiant {client_id}. Vérifiez le numéro du client.",
        "No file has the identifier {client_id}. Check the client's number.",
    ),
    _k(
        "bad_client_id",
        400,
        r"\w+ must be an integer from 1 to 2\*\*53 written with digits only",
        "L'identifiant client s'écrit en chiffres, sans zéro initial, de 1 à {max_id}.",
        "A client identifier is written in digits, without a leading zero, from 1 to {max_id}.",
    ),
    _k(
        "no_application",
        404,
        r"this database has no Home Credit application tables",
        "Cette base ne contient pas les demandes de crédit : la simulation n'est pas disponible.",
        "This database holds no credit applications: the simulation is not available.",
    ),
    # ---- what-if values (app/data/whatif.py) and feature vectors (app/service/state.py)
    _k(
        "whatif_number",
        400,
        r"(?P<column>\S+) must be a finite number or null",
        "« {column} » doit être un nombre (ou rester vide).",
        "“{column}” must be a number (or left empty).",
    ),
    _k(
        "whatif_integer",
        400,
        r"(?P<column>\S+) must be an integer or null",
        "« {column} » doit être un nombre entier (ou rester vide).",
        "“{column}” must be a whole number (or left empty).",
    ),
    _k(
        "whatif_range",
        400,
        r"(?P<column>\S+) is out of range \(\|value\| <= 1e15\)",
        "« {column} » est hors des limites acceptées (au plus 10¹⁵ en valeur absolue).",
        "“{column}” is out of the accepted range (at most 10¹⁵ in absolute value).",
    ),
    _k(
        "whatif_text",
        400,
        r"(?P<column>\S+) must be text of at most \w+ characters or null",
        "« {column} » est un texte trop long.",
        "“{column}” is too long a text.",
    ),
    _k(
        "whatif_columns",
        400,
        r"unknown application columns",
        "La simulation nomme des champs que la demande de crédit ne contient pas.",
        "The simulation names fields the credit application does not have.",
    ),
    _k(
        "feature_value",
        400,
        r"feature '?(?P<feature>[^' ]+)'? (must be a number or null|is out of range \(finite float32\))",
        "« {feature} » doit être un nombre fini (ou rester vide).",
        "“{feature}” must be a finite number (or left empty).",
    ),
    _k(
        "unknown_features",
        400,
        r"unknown feature names( in \w+)?",
        "Variables inconnues du modèle : {features}.",
        "Features the model does not know: {features}.",
    ),
    _k(
        "too_many_features",
        400,
        r"at most \d+ features",
        "Trop de variables comparées à la fois : choisissez-en moins.",
        "Too many features compared at once: choose fewer.",
    ),
    # ---- requests the dashboard itself built badly
    _k(
        "bad_request",
        400,
        r"(invalid request( body: .*)?|malformed JSON.*|request body must be a JSON object|request body is not valid"
        r" UTF-8|JSON nested too deeply|unknown query parameters|client disconnected before the end of the request "
        r"body|\w+ must be a finite number of unix seconds|malformed HTTP request)",
        "Le tableau de bord a envoyé une demande que l'API refuse. Signalez-le à l'équipe technique.",
        "The dashboard sent a request the API refuses. Please tell the technical team.",
    ),
    _k(
        "bad_user",
        400,
        r"X-Credit-User is not a user name.*",
        "Ce nom d'utilisateur ne peut pas être transmis à l'API.",
        "This user name cannot be passed on to the API.",
    ),
    # ---- keys and roles
    _k(
        "unauthorized",
        401,
        r"missing or invalid API key",
        "L'API refuse la clé du tableau de bord : vérifiez sa configuration.",
        "The API rejects the dashboard's key: check its configuration.",
    ),
    _k(
        "forbidden_role",
        403,
        r"this endpoint needs the (?P<role>\w+) role",
        "La clé du tableau de bord n'a pas le rôle « {role} » que demande cette page.",
        "The dashboard's key lacks the “{role}” role this page needs.",
    ),
    _k(
        "forbidden_user",
        403,
        r"only the dashboard's API keys may name a user.*",
        "Seules les clés du tableau de bord peuvent nommer l'utilisateur : vérifiez sa configuration.",
        "Only the dashboard's keys may name the user: check its configuration.",
    ),
    # ---- the decision letter (app/rights/records.py)
    _k(
        "no_logged_decision",
        404,
        r"no logged decision (with request id|for client) \S+",
        "Aucune décision enregistrée ne porte cette référence : la lettre ne peut pas être établie.",
        "No logged decision has this reference: the letter cannot be written.",
    ),
    _k(
        "bad_request_id",
        400,
        r"a request id is the `request_id` of a logged decision",
        "Cette référence de décision n'est pas valide : reprenez le lien depuis le dossier du client.",
        "This decision reference is not valid: open the link again from the client's file.",
    ),
    _k(
        "decision_vector_missing",
        404,
        r"the vector of decision \S+ is not in the log",
        "Les données de cette décision ne sont plus dans le journal : la lettre ne peut pas être établie.",
        "This decision's data is no longer in the log: the letter cannot be written.",
    ),
    # ---- monitoring
    _k(
        "no_predictions",
        404,
        r"no predictions logged in the window",
        "Aucune prédiction enregistrée sur la période.",
        "No prediction logged in the period.",
    ),
    _k(
        "no_decisions",
        404,
        r"no decisions logged yet",
        "Aucune décision enregistrée pour l'instant.",
        "No decision logged yet.",
    ),
    _k(
        "no_model_fairness",
        404,
        r"no training-time fairness for this model.*|the fairness file belongs to another model.*",
        "L'équité mesurée à l'entraînement n'est pas disponible pour ce modèle (à réentraîner).",
        "The fairness measured at training is not available for this model (retrain it).",
    ),
    _k(
        "no_model_card",
        404,
        r"no model card for this model.*|the model card belongs to another model.*",
        "La fiche de ce modèle n'est pas disponible (modèle à réentraîner).",
        "This model's card is not available (retrain the model).",
    ),
    _k(
        "drift_too_few",
        409,
        r".*",
        "Pas assez de prédictions pour un rapport de dérive : {rows} sur les {min_rows} nécessaires.",
        "Not enough predictions for a drift report: {rows} of the {min_rows} needed.",
    ),
    # ---- the API's limits and faults
    _k(
        "route_not_found",
        404,
        r"not found",
        "Cette adresse n'existe pas dans l'API : le tableau de bord et l'API n'ont peut-être pas la même version.",
        "This address does not exist in the API: the dashboard and the API may not be the same version.",
    ),
    _k(
        "too_slow_request",
        408,
        r"request (headers|body) not received in time",
        "La demande a mis trop de temps à parvenir à l'API. Réessayez.",
        "The request took too long to reach the API. Try again.",
    ),
    _k(
        "too_large",
        413,
        r".*",
        "La demande est trop volumineuse pour l'API.",
        "The request is too large for the API.",
    ),
    _k(
        "request_too_big",
        (414, 431),
        r".*",
        "La demande envoyée à l'API est trop grande (adresse ou en-têtes).",
        "The request sent to the API is too large (address or headers).",
    ),
    _k(
        "rate_limited",
        429,
        r".*",
        "Trop de demandes en peu de temps : réessayez dans quelques secondes.",
        "Too many requests in a short time: try again in a few seconds.",
    ),
    _k(
        "internal",
        500,
        r"internal server error|model returned a non-finite probability",
        "L'API a rencontré une erreur interne. Réessayez ; si elle persiste, signalez-la à l'équipe technique.",
        "The API met an internal error. Try again; if it persists, tell the technical team.",
    ),
    _k(
        "not_in_build",
        501,
        r".*not available in this build",
        "Cette fonction n'est pas disponible dans cette installation de l'API.",
        "This function is not available in this installation of the API.",
    ),
    _k(
        "model_unavailable",
        503,
        r"model unavailable",
        "Le modèle est momentanément indisponible. Réessayez dans un instant.",
        "The model is unavailable for the moment. Try again shortly.",
    ),
    _k(
        "database_unavailable",
        503,
        r"database unavailable",
        "La base des clients est momentanément indisponible (mise à jour en cours ?). Réessayez dans un instant.",
        "The client database is unavailable for the moment (being updated?). Try again shortly.",
    ),
    _k(
        "log_unavailable",
        503,
        r"prediction log unavailable|outcome store unavailable",
        "Le journal des décisions est momentanément indisponible : rien n'a été enregistré. Réessayez.",
        "The decision log is unavailable for the moment: nothing was recorded. Try again.",
    ),
    _k(
        "features_mismatch",
        503,
        r"cannot score: the stored features do not match the model",
        "Les données de ce client ne correspondent pas au modèle en service : signalez-le à l'équipe technique.",
        "This client's data does not match the model in service: tell the technical team.",
    ),
    _k(
        "report_unavailable",
        503,
        r"(?P<what>explanations|drift report|fairness report|performance report) unavailable|cannot score the "
        r"portfolio",
        "Ce calcul est momentanément indisponible. Réessayez dans un instant.",
        "This computation is unavailable for the moment. Try again shortly.",
    ),
    _k(
        "not_ready",
        503,
        r"not ready: .*",
        "L'API démarre ou se met à jour. Réessayez dans un instant.",
        "The API is starting or updating. Try again shortly.",
    ),
    _k(
        "busy",
        503,
        r"too many connections",
        "L'API est saturée : réessayez dans quelques secondes.",
        "The API is overloaded: try again in a few seconds.",
    ),
)

FALLBACK = {
    "fr": "L'API a refusé la demande (code HTTP {status}) pour une raison que le tableau de bord ne sait pas "
    "traduire. Réessayez ; si cela persiste, signalez-le à l'équipe technique.",
    "en": "The API refused the request (HTTP status {status}) for a reason the dashboard cannot translate. Try "
    "again; if it persists, tell the technical team.",
}
FALLBACK_5XX = {
    "fr": "L'API est en erreur (code HTTP {status}). Réessayez ; si cela persiste, signalez-le à l'équipe technique.",
    "en": "The API is failing (HTTP status {status}). Try again; if it persists, tell the technical team.",
}


def find(status: int | None, error: str) -> Known | None:
    """The catalogue's entry for this status and error text, or None."""
    for known in CATALOGUE:
        if status in known.statuses and known.pattern.fullmatch(error or ""):
            return known
    return None


def code(status: int | None, error: str) -> str:
    """The stable code of an API error ('unknown_client'), 'unknown' when the catalogue has no entry."""
    known = find(status, error)
    return known.code if known else "unknown"


def sentence(status: int | None, error: str, detail: Any, lang: str) -> str:
    """The officer's sentence for an API error, in `lang`; the fallback names only the HTTP status."""
    from ui.i18n import feature_label

    lg = "en" if lang == "en" else "fr"
    known = find(status, error)
    if known is None:
        table = FALLBACK_5XX if (status or 0) >= 500 else FALLBACK
        return table[lg].format(status=status if status is not None else "?")
    m = known.pattern.fullmatch(error or "")
    found = {k: v for k, v in (m.groupdict() if m else {}).items() if v}
    data = detail if isinstance(detail, dict) else {}
    values: dict[str, str] = {}
    cid = data.get("client_id")
    values["client_id"] = locale.number(cid, lg) if isinstance(cid, int) else str(cid or "?")[:40]
    values["max_id"] = locale.number(2**53, lg)
    for name in ("column", "feature"):
        raw = found.get(name) or data.get(name)
        values[name] = feature_label(str(raw), lg) if raw else "?"
    names = data.get("unknown_features") or data.get("unknown_columns") or []
    values["features"] = ", ".join(str(n)[:60] for n in names[:10]) or "?"
    values["role"] = _ROLE.get(found.get("role", ""), {}).get(lg, found.get("role", "?"))
    for name in ("rows", "min_rows"):
        values[name] = locale.number(data.get(name), lg) if isinstance(data.get(name), int) else "?"
    return (known.fr if lg == "fr" else known.en).format(**values)


_ROLE = {
    "officer": {"fr": "chargé de clientèle", "en": "loan officer"},
    "risk": {"fr": "analyste risque", "en": "risk analyst"},
    "admin": {"fr": "administrateur", "en": "administrator"},
}
