"""The decision letter's words, French and English (one entry per sentence; the letter's layout is letter.py)."""

from __future__ import annotations

import datetime as dt

BANK = "Prêt à dépenser"

TEXT: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Votre demande de crédit : notre décision et vos droits",
        "reference": "Référence de la décision",
        "client": "Client n°",
        "issued": "Lettre émise le",
        "decided_on": "Décision prise le {when} par notre modèle de notation automatisé (modèle {model}).",
        "result_accept": "Votre demande de crédit est acceptée.",
        "result_refuse": "Votre demande de crédit n'est pas acceptée.",
        "probability": "Probabilité de défaut estimée : {p} ; notre seuil d'acceptation est {t}.",
        "automated": "Décision automatisée initiale : {d}.",
        "override": "Un conseiller a modifié cette décision le {when} ({reason}).",
        "override_pending": "Un conseiller a proposé de modifier cette décision ({reason}) ; un second avis de "
        "l'équipe risques est en attente : la décision ci-dessus reste celle du modèle.",
        "override_rejected": "Une modification proposée par un conseiller a été refusée par l'équipe risques.",
        "review_open": "Votre demande de réexamen du {when} est en cours : une personne de l'équipe risques "
        "l'examine avec votre point de vue.",
        "review_done": "Réexamen humain : le {when}, une personne de l'équipe risques a {verb} la décision "
        "({reason}) après avoir pris en compte votre point de vue.",
        "uphold": "confirmé",
        "overturn": "modifié",
        "reasons_h": "Les principales raisons : ce qui a pesé contre la demande dans l'évaluation automatisée",
        "reasons_none": "Aucun élément n'a pesé en défaveur de votre demande.",
        "data_h": "Les données utilisées (vérifiez-les)",
        "data_note": "Valeurs de votre dossier au moment de la décision ; la liste complète des {n} données vous est "
        "remise sur simple demande. Si une donnée est inexacte, signalez-le : vous pouvez la faire rectifier.",
        "cf_h": "Ce qui changerait la décision",
        "cf_found": "D'après notre modèle, la demande aurait été acceptée avec le changement suivant (vérifié en "
        "recalculant le score ; vos autres données inchangées) :",
        "cf_none": "Aucune modification réaliste du montant, de la durée ou d'un co-emprunteur ne suffirait à elle "
        "seule : un réexamen humain reste possible.",
        "cf_unavailable": "Nous ne pouvons pas calculer ce changement pour cette décision ({reason}).",
        "cf_accept": "Sans objet : votre demande est acceptée.",
        "cf_note": "Nous ne vous suggérons jamais de changer votre âge, votre sexe, votre situation familiale ou votre "
        "passé de crédit.",
        "rights_h": "Vos droits",
        "rights": "Cette décision repose sur un traitement automatisé. Au titre de l'article 18 de la directive (UE) "
        "2023/2225 sur les contrats de crédit aux consommateurs et de l'article 22 du RGPD, vous pouvez : obtenir "
        "une explication claire de l'évaluation (cette lettre) ; exprimer votre point de vue ; demander une "
        "intervention humaine et le réexamen de l'évaluation et de la décision. Vous pouvez aussi accéder à vos "
        "données et les faire rectifier (RGPD, articles 15 et 16), et saisir l'autorité de protection des "
        "données (en France, la CNIL).",
        "how_h": "Comment exercer vos droits",
        "how": "Adressez-vous à votre conseiller ou écrivez-nous en indiquant la référence ci-dessus. Votre "
        "demande de réexamen et votre point de vue sont enregistrés ; une personne de l'équipe risques, qui n'a "
        "pas pris la décision, y répond. Nous vous répondons dans un délai d'un mois.",
        "accept": "accordé",
        "refuse": "refusé",
        "footer": "{bank} : lettre n°{n} établie à partir de la décision enregistrée (non d'un nouveau calcul).",
    },
    "en": {
        "title": "Your credit application: our decision and your rights",
        "reference": "Decision reference",
        "client": "Client no.",
        "issued": "Letter issued on",
        "decided_on": "Decided on {when} by our automated scoring model (model {model}).",
        "result_accept": "Your credit application is accepted.",
        "result_refuse": "Your credit application is not accepted.",
        "probability": "Estimated probability of default: {p}; our acceptance threshold is {t}.",
        "automated": "Initial automated decision: {d}.",
        "override": "A loan officer changed this decision on {when} ({reason}).",
        "override_pending": "A loan officer proposed to change this decision ({reason}); a second opinion of the "
        "risk team is pending: the decision above remains the model's.",
        "override_rejected": "A change proposed by a loan officer was rejected by the risk team.",
        "review_open": "Your request for a review of {when} is in progress: a person of the risk team is examining "
        "it with your point of view.",
        "review_done": "Human review: on {when}, a person of the risk team {verb} the decision ({reason}) after "
        "considering your point of view.",
        "uphold": "upheld",
        "overturn": "changed",
        "reasons_h": "The principal reasons: what weighed against the application in the automated assessment",
        "reasons_none": "Nothing weighed against your application.",
        "data_h": "The data used (please check them)",
        "data_note": "Values of your file when the decision was made; the full list of {n} values is given to you on "
        "request. If a value is wrong, tell us: you may have it corrected.",
        "cf_h": "What would change the decision",
        "cf_found": "According to our model, the application would have been accepted with the following change "
        "(checked by scoring it again; your other data unchanged):",
        "cf_none": "No realistic change of the amount, the term or a co-borrower would be enough on its own: a human "
        "review remains possible.",
        "cf_unavailable": "We cannot compute this change for this decision ({reason}).",
        "cf_accept": "Not applicable: your application is accepted.",
        "cf_note": "We never suggest changing your age, sex, family situation or credit history.",
        "rights_h": "Your rights",
        "rights": "This decision relies on automated processing. Under Article 18 of the Consumer Credit Directive "
        "(EU) 2023/2225 and Article 22 of the GDPR you may: obtain a clear explanation of the assessment (this "
        "letter); express your point of view; request human intervention and a review of the assessment and of "
        "the decision. You may also access your data and have it corrected (GDPR Articles 15 and 16), and complain "
        "to the data protection authority (in France, the CNIL).",
        "how_h": "How to exercise them",
        "how": "Ask your loan officer or write to us quoting the reference above. Your request for a review and your "
        "point of view are recorded; a person of the risk team who did not take the decision answers it. We answer "
        "within one month.",
        "accept": "granted",
        "refuse": "refused",
        "footer": "{bank}: letter no. {n} made from the decision as recorded (not from a new calculation).",
    },
}

MONTHS = {
    "fr": [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ],
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
}


def t(key: str, lang: str, **kw: object) -> str:
    text = TEXT[lang][key]
    return text.format(**kw) if kw else text


def when(ts: float, lang: str) -> str:
    """A UTC time for people: "7 décembre 2026 à 11:56 UTC" / "7 December 2026, 11:56 UTC"."""
    d = dt.datetime.fromtimestamp(ts, dt.UTC)
    month = MONTHS[lang][d.month - 1]
    sep = " à " if lang == "fr" else ", "
    return f"{d.day} {month} {d.year}{sep}{d:%H:%M} UTC"


def percent(p: float, lang: str) -> str:
    return f"{100 * p:.1f}\u00a0%".replace(".", ",") if lang == "fr" else f"{100 * p:.1f}%"
