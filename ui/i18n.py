"""French and English labels of the dashboard. Every key must exist in both languages (tested)."""

from __future__ import annotations

LANGS = ("fr", "en")

LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "app_title": "Prêt à dépenser — scoring crédit",
        "skip": "Aller au contenu",
        "nav_client": "Dossier client",
        "nav_model": "Modèle",
        "nav_monitoring": "Surveillance",
        "lang_toggle": "English",
        "lang_toggle_aria": "Switch the interface to English",
        "logout": "Se déconnecter",
        "search_label": "Identifiant client",
        "search_aria": "Identifiant du client à rechercher (Entrée pour valider)",
        "search_button": "Rechercher",
        "search_hint": "Saisissez un identifiant client puis Entrée.",
        "search_invalid": "L'identifiant client doit être un nombre entier.",
        "suggestions": "Suggestions",
        "client_title": "Client {client_id}",
        "probability": "Probabilité de défaut",
        "threshold": "Seuil",
        "decision": "Décision",
        "accept": "Accordé",
        "refuse": "Refusé",
        "model_id": "Modèle",
        "completeness": "Données renseignées",
        "gauge_caption": (
            "Probabilité de défaut {probability} ; seuil de refus {threshold}. "
            "La probabilité est {side} du seuil : crédit {decision}."
        ),
        "below": "en dessous",
        "above": "au-dessus ou au niveau",
        "fields": "Informations du client",
        "field": "Champ",
        "value": "Valeur",
        "tab_file": "Dossier",
        "tab_explain": "Explication",
        "tab_compare": "Comparaison",
        "tab_whatif": "Simulation",
        "explain_title": "Principaux facteurs de la décision",
        "explain_caption": (
            "Graphique en cascade : part de départ {base}, puis {n} contributions ; "
            "{up} augmentent le risque, {down} le diminuent ; probabilité finale {probability}."
        ),
        "base_value": "Valeur de base",
        "others": "Autres variables",
        "final": "Score du client",
        "increases": "augmente le risque",
        "decreases": "diminue le risque",
        "reasons": "Ce qui augmente le risque",
        "compare_title": "Comparaison avec les autres clients",
        "compare_features": "Variables comparées",
        "compare_features_aria": "Choisir les variables à comparer",
        "compare_caption": (
            "{feature} : valeur du client {value}, au {percentile}e centile de {n} clients ; "
            "médiane des accordés {acc}, des refusés {ref}, des {k} clients les plus proches {near}."
        ),
        "all_clients": "Tous les clients",
        "accepted_clients": "Clients accordés",
        "refused_clients": "Clients refusés",
        "similar_clients": "Clients similaires",
        "client_value": "Valeur du client",
        "neighbours_title": "Les {k} clients les plus similaires",
        "neighbours_caption": "Proximité calculée sur les variables comparées, normalisées.",
        "count": "Nombre",
        "missing": "manquant",
        "whatif_title": "Simulation : modifiez quelques valeurs",
        "whatif_hint": "Le score est recalculé dès qu'une valeur change.",
        "whatif_hint_raw": (
            "Modifiez la demande : le score est recalculé dès qu'une valeur change, avec les ratios qui en dépendent."
        ),
        "whatif_recomputed": "Variables recalculées : {features}",
        "whatif_input_aria": "Nouvelle valeur pour {feature}",
        "whatif_result": "Nouvelle probabilité {probability} ({delta} par rapport au dossier) : {decision}",
        "whatif_reset": "Réinitialiser",
        "model_title": "Le modèle",
        "metrics": "Métriques",
        "metric": "Métrique",
        "business_cost": "Coût métier",
        "costs": "Coûts : défaut accepté {fn}, bon client refusé {fp}",
        "trained_at": "Entraîné le",
        "n_features": "Nombre de variables",
        "global_importance": "Importance globale (SHAP moyen absolu)",
        "importance_caption": "Les variables les plus importantes sont, dans l'ordre : {top}.",
        "monitoring_title": "Surveillance du service",
        "requests": "Requêtes",
        "mean_probability": "Probabilité moyenne (%)",
        "latency_p50": "Latence p50 (ms)",
        "latency_p99": "Latence p99 (ms)",
        "score_over_time": "Distribution des scores dans le temps",
        "score_caption": "{n} périodes ; probabilité moyenne de {first} à {last}.",
        "drift_title": "Dérive des données",
        "drift_caption": "{drifted} variables en dérive sur {total} (seuil PSI {threshold}).",
        "drift_report": "Rapport de dérive complet",
        "dataset_drift": "Dérive globale détectée",
        "no_dataset_drift": "Pas de dérive globale",
        "not_available": "Non disponible",
        "admin_only": "Réservé aux administrateurs.",
        "no_data": "Aucune donnée pour l'instant.",
        "perf_title": "Performance réalisée (défauts observés)",
        "perf_outcomes": "Issues rapprochées",
        "perf_auc": "AUC réalisée",
        "perf_cost": "Coût par client",
        "perf_accept_all": "Coût si tout accordé",
        "perf_never_scored": "Issues sans décision",
        "perf_too_few": "Trop peu d'issues observées pour un chiffre fiable ({n}, minimum {min}).",
        "perf_band": "Tranche de score",
        "perf_n": "Clients",
        "perf_predicted": "Probabilité prédite",
        "perf_observed": "Taux de défaut observé",
        "fairness_title": "Équité des décisions",
        "fairness_caption": "{n} clients, dernière décision de chacun ; signalé sous un ratio de {floor}.",
        "fair_group": "Groupe",
        "fair_approval": "Taux d'accord",
        "fair_ratio": "Ratio au groupe le mieux traité",
        "fair_tpr": "Défauts refusés",
        "fair_fpr": "Bons clients refusés",
        "fair_flag": "Alerte",
        "fair_flagged": "⚠ Sous le ratio : {groups}",
        "model_card": "Fiche du modèle",
        "feature": "Variable",
        "psi": "PSI",
        "drifted": "Dérive",
        "yes": "oui",
        "no": "non",
        "loading": "Chargement…",
        "err_down": "L'API est injoignable ({url}). Vérifiez qu'elle est démarrée.",
        "err_timeout": "L'API n'a pas répondu à temps ({url}).",
        "err_unauthorized": "Clé d'API refusée : vérifiez la configuration du tableau de bord.",
        "err_forbidden": "Accès refusé pour ce rôle.",
        "err_not_found": "Introuvable : {detail}",
        "err_api": "Erreur de l'API ({status}) : {detail}",
        "login_title": "Connexion",
        "password": "Mot de passe",
        "password_aria": "Mot de passe du tableau de bord",
        "login": "Se connecter",
        "login_failed": "Mot de passe incorrect.",
    },
    "en": {
        "app_title": "Prêt à dépenser — credit scoring",
        "skip": "Skip to content",
        "nav_client": "Client file",
        "nav_model": "Model",
        "nav_monitoring": "Monitoring",
        "lang_toggle": "Français",
        "lang_toggle_aria": "Passer l'interface en français",
        "logout": "Log out",
        "search_label": "Client id",
        "search_aria": "Id of the client to look up (Enter to submit)",
        "search_button": "Search",
        "search_hint": "Type a client id, then press Enter.",
        "search_invalid": "The client id must be a whole number.",
        "suggestions": "Suggestions",
        "client_title": "Client {client_id}",
        "probability": "Probability of default",
        "threshold": "Threshold",
        "decision": "Decision",
        "accept": "Accepted",
        "refuse": "Refused",
        "model_id": "Model",
        "completeness": "Data completeness",
        "gauge_caption": (
            "Probability of default {probability}; refusal threshold {threshold}. "
            "The probability is {side} the threshold: credit {decision}."
        ),
        "below": "below",
        "above": "at or above",
        "fields": "Client information",
        "field": "Field",
        "value": "Value",
        "tab_file": "File",
        "tab_explain": "Explanation",
        "tab_compare": "Comparison",
        "tab_whatif": "What-if",
        "explain_title": "Main factors of the decision",
        "explain_caption": (
            "Waterfall chart: starting value {base}, then {n} contributions; "
            "{up} increase the risk, {down} decrease it; final probability {probability}."
        ),
        "base_value": "Base value",
        "others": "Other features",
        "final": "Client score",
        "increases": "increases the risk",
        "decreases": "decreases the risk",
        "reasons": "What increases the risk",
        "compare_title": "Comparison with other clients",
        "compare_features": "Compared features",
        "compare_features_aria": "Choose the features to compare",
        "compare_caption": (
            "{feature}: client value {value}, at percentile {percentile} of {n} clients; "
            "median of accepted {acc}, of refused {ref}, of the {k} most similar clients {near}."
        ),
        "all_clients": "All clients",
        "accepted_clients": "Accepted clients",
        "refused_clients": "Refused clients",
        "similar_clients": "Similar clients",
        "client_value": "Client value",
        "neighbours_title": "The {k} most similar clients",
        "neighbours_caption": "Similarity computed on the compared features, standardised.",
        "count": "Count",
        "missing": "missing",
        "whatif_title": "What-if: change a few values",
        "whatif_hint": "The score is recomputed as soon as a value changes.",
        "whatif_hint_raw": "Change the application: the score and the ratios that depend on it follow every change.",
        "whatif_recomputed": "Recomputed features: {features}",
        "whatif_input_aria": "New value for {feature}",
        "whatif_result": "New probability {probability} ({delta} against the file): {decision}",
        "whatif_reset": "Reset",
        "model_title": "The model",
        "metrics": "Metrics",
        "metric": "Metric",
        "business_cost": "Business cost",
        "costs": "Costs: accepted default {fn}, refused good client {fp}",
        "trained_at": "Trained at",
        "n_features": "Number of features",
        "global_importance": "Global importance (mean absolute SHAP)",
        "importance_caption": "The most important features are, in order: {top}.",
        "monitoring_title": "Service monitoring",
        "requests": "Requests",
        "mean_probability": "Mean probability (%)",
        "latency_p50": "Latency p50 (ms)",
        "latency_p99": "Latency p99 (ms)",
        "score_over_time": "Score distribution over time",
        "score_caption": "{n} periods; mean probability from {first} to {last}.",
        "drift_title": "Data drift",
        "drift_caption": "{drifted} drifted features out of {total} (PSI threshold {threshold}).",
        "drift_report": "Full drift report",
        "dataset_drift": "Data set drift detected",
        "no_dataset_drift": "No data set drift",
        "not_available": "Not available",
        "admin_only": "Administrators only.",
        "no_data": "No data yet.",
        "perf_title": "Realised performance (observed defaults)",
        "perf_outcomes": "Outcomes joined",
        "perf_auc": "Realised AUC",
        "perf_cost": "Cost per client",
        "perf_accept_all": "Cost if all accepted",
        "perf_never_scored": "Outcomes never scored",
        "perf_too_few": "Too few observed outcomes for a reliable figure ({n}, at least {min}).",
        "perf_band": "Score band",
        "perf_n": "Clients",
        "perf_predicted": "Predicted probability",
        "perf_observed": "Observed default rate",
        "fairness_title": "Fairness of decisions",
        "fairness_caption": "{n} clients, the latest decision of each; flagged below a ratio of {floor}.",
        "fair_group": "Group",
        "fair_approval": "Approval rate",
        "fair_ratio": "Ratio to the best-treated group",
        "fair_tpr": "Defaulters refused",
        "fair_fpr": "Good clients refused",
        "fair_flag": "Flag",
        "fair_flagged": "⚠ Below the ratio: {groups}",
        "model_card": "Model card",
        "feature": "Feature",
        "psi": "PSI",
        "drifted": "Drifted",
        "yes": "yes",
        "no": "no",
        "loading": "Loading…",
        "err_down": "The API cannot be reached ({url}). Check that it is running.",
        "err_timeout": "The API did not answer in time ({url}).",
        "err_unauthorized": "API key rejected: check the dashboard configuration.",
        "err_forbidden": "Access denied for this role.",
        "err_not_found": "Not found: {detail}",
        "err_api": "API error ({status}): {detail}",
        "login_title": "Log in",
        "password": "Password",
        "password_aria": "Dashboard password",
        "login": "Log in",
        "login_failed": "Wrong password.",
    },
}


def t(key: str, lang: str = "fr", **kwargs: object) -> str:
    """The label `key` in `lang` (falls back to French), formatted with kwargs."""
    table = LABELS.get(lang, LABELS["fr"])
    text = table.get(key) or LABELS["fr"].get(key) or key
    return text.format(**kwargs) if kwargs else text


def other_lang(lang: str) -> str:
    return "en" if lang == "fr" else "fr"


def feature_label(name: str, lang: str) -> str:
    """Human label of a model feature (app.model.labels, a pure table), else the raw name."""
    try:
        from app.model.labels import label

        return label(name, lang)
    except Exception:  # noqa: BLE001 - labels are decoration; never break a page for them
        return name


def feature_value(name: str, value: float | None, lang: str) -> str | None:
    """A feature value in its label's unit (age in years, amounts grouped), or None if unknown."""
    try:
        from app.model.labels import format_value, label_for

        return format_value(label_for(name).unit, value, lang)
    except Exception:  # noqa: BLE001
        return None
