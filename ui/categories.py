"""French and English labels of the values a page shows that come from the data, not from the dashboard: the Home
Credit category values (a closed list, app/data/synthetic.py mirrors it), the sensitive attributes examined for
fairness and their groups. A value outside these lists (another data set) is shown as it is, marked "(non traduit)"
/ "(untranslated)", so a missing translation is visible rather than silently English."""

from __future__ import annotations

import re

# Home Credit category values -> French (English keeps the data's own words)
FR = {
    # NAME_CONTRACT_TYPE
    "Cash loans": "Prêt personnel",
    "Revolving loans": "Crédit renouvelable",
    # NAME_INCOME_TYPE
    "Working": "Salarié",
    "Commercial associate": "Associé commercial",
    "Pensioner": "Retraité",
    "State servant": "Fonctionnaire",
    "Unemployed": "Sans emploi",
    "Student": "Étudiant",
    "Businessman": "Chef d'entreprise",
    "Maternity leave": "Congé maternité",
    # NAME_EDUCATION_TYPE
    "Secondary / secondary special": "Secondaire / professionnel",
    "Higher education": "Études supérieures",
    "Incomplete higher": "Supérieur inachevé",
    "Lower secondary": "Premier cycle du secondaire",
    "Academic degree": "Diplôme universitaire de recherche",
    # NAME_FAMILY_STATUS
    "Married": "Marié(e)",
    "Single / not married": "Célibataire",
    "Civil marriage": "Union civile",
    "Separated": "Séparé(e)",
    "Widow": "Veuf / veuve",
    "Unknown": "Inconnu",
    # NAME_HOUSING_TYPE
    "House / apartment": "Maison / appartement",
    "With parents": "Chez les parents",
    "Municipal apartment": "Logement municipal",
    "Rented apartment": "Appartement loué",
    "Office apartment": "Logement de fonction",
    "Co-op apartment": "Appartement en coopérative",
    # NAME_TYPE_SUITE
    "Unaccompanied": "Seul(e)",
    "Family": "Famille",
    "Spouse, partner": "Conjoint(e)",
    "Children": "Enfants",
    "Other_A": "Autre (A)",
    "Other_B": "Autre (B)",
    "Group of people": "Groupe de personnes",
    # OCCUPATION_TYPE
    "Laborers": "Ouvriers",
    "Sales staff": "Vendeurs",
    "Core staff": "Personnel qualifié",
    "Managers": "Cadres",
    "Drivers": "Chauffeurs",
    "High skill tech staff": "Techniciens hautement qualifiés",
    "Accountants": "Comptables",
    "Medicine staff": "Personnel médical",
    "Security staff": "Agents de sécurité",
    "Cooking staff": "Cuisiniers",
    "Cleaning staff": "Agents d'entretien",
    "Private service staff": "Personnel de maison",
    "Low-skill Laborers": "Ouvriers non qualifiés",
    "Waiters/barmen staff": "Serveurs / barmen",
    "Secretaries": "Secrétaires",
    "Realty agents": "Agents immobiliers",
    "HR staff": "Ressources humaines",
    "IT staff": "Informaticiens",
    # ORGANIZATION_TYPE (the numbered types below are translated by pattern)
    "XNA": "Non applicable",
    "Self-employed": "Travailleur indépendant",
    "Other": "Autre",
    "Medicine": "Santé",
    "Government": "Administration",
    "School": "École",
    "Kindergarten": "Crèche / maternelle",
    "Construction": "Construction",
    "Security": "Sécurité",
    "Housing": "Logement",
    "Military": "Armée",
    "Bank": "Banque",
    "Agriculture": "Agriculture",
    "Police": "Police",
    "Postal": "Poste",
    "Security Ministries": "Ministères de la sécurité",
    "Restaurant": "Restauration",
    "Services": "Services",
    "University": "Université",
    "Hotel": "Hôtellerie",
    "Electricity": "Électricité",
    "Insurance": "Assurance",
    "Telecom": "Télécommunications",
    "Emergency": "Urgences",
    "Advertising": "Publicité",
    "Realtor": "Agence immobilière",
    "Culture": "Culture",
    "Mobile": "Téléphonie mobile",
    "Legal Services": "Services juridiques",
    "Cleaning": "Nettoyage",
    "Religion": "Religion",
    # WEEKDAY_APPR_PROCESS_START
    "MONDAY": "lundi",
    "TUESDAY": "mardi",
    "WEDNESDAY": "mercredi",
    "THURSDAY": "jeudi",
    "FRIDAY": "vendredi",
    "SATURDAY": "samedi",
    "SUNDAY": "dimanche",
    # bureau credit types
    "Consumer credit": "Crédit à la consommation",
    "Credit card": "Carte de crédit",
    "Car loan": "Prêt automobile",
    "Mortgage": "Prêt immobilier",
    "Microloan": "Microcrédit",
    "Loan for business development": "Prêt de développement d'entreprise",
    "Another type of loan": "Autre type de prêt",
    "Unknown type of loan": "Type de prêt inconnu",
    "Loan for working capital replenishment": "Prêt de trésorerie",
    "Cash loan (non-earmarked)": "Prêt personnel non affecté",
    "Real estate loan": "Prêt immobilier (bien)",
    "Loan for the purchase of equipment": "Prêt d'équipement",
    "Interbank credit": "Crédit interbancaire",
    "Mobile operator loan": "Prêt d'opérateur mobile",
    "Loan for purchase of shares (margin lending)": "Prêt pour achat d'actions (sur marge)",
}
NUMBERED = {  # 'Business Entity Type 3', 'Trade: type 7', ...
    re.compile(r"Business Entity Type (\d+)"): "Entreprise, type {}",
    re.compile(r"Trade: type (\d+)"): "Commerce, type {}",
    re.compile(r"Industry: type (\d+)"): "Industrie, type {}",
    re.compile(r"Transport: type (\d+)"): "Transport, type {}",
}
ENGLISH = set(FR) | {"Business Entity Type", "Trade: type", "Industry: type", "Transport: type"}

# fairness: sensitive attributes (CREDIT_SENSITIVE) and the groups the API reports
ATTRIBUTES = {
    "gender": {"fr": "Sexe", "en": "Sex"},
    "age_band": {"fr": "Tranche d'âge", "en": "Age band"},
    "family_status": {"fr": "Situation familiale", "en": "Family status"},
}
GROUPS = {
    "F": {"fr": "Femmes", "en": "Women"},
    "M": {"fr": "Hommes", "en": "Men"},
    "XNA": {"fr": "Non renseigné", "en": "Not given"},
}
AGE_BAND = re.compile(r"^(<|>=|≥)?\s*(\d+)(?:\s*[-–]\s*(\d+)|\s*(\+))?$")  # '<25', '25-35', '65+', '>=65'
UNTRANSLATED = {"fr": "non traduit", "en": "untranslated"}


def category(value: object, lang: str) -> str:
    """A data category value in `lang`: 'Widow' -> 'Veuf / veuve'; unknown values visibly marked."""
    text = str(value)
    if lang != "fr":
        return text
    if text in FR:
        return FR[text]
    for pattern, template in NUMBERED.items():
        m = pattern.fullmatch(text)
        if m:
            return template.format(m.group(1))
    return f"{text} ({UNTRANSLATED[lang]})"


def attribute(name: str, lang: str) -> str:
    """A sensitive attribute's name: 'age_band' -> "Tranche d'âge"."""
    return ATTRIBUTES.get(name, {}).get(lang) or f"{name} ({UNTRANSLATED.get(lang, 'untranslated')})"


def group(value: object, lang: str) -> str:
    """A fairness group: 'F' -> 'Femmes', '<25' -> 'moins de 25 ans', '25-35' -> '25 à 35 ans', a category value
    through `category`."""
    text = str(value)
    if text in GROUPS:
        return GROUPS[text][lang if lang in ("fr", "en") else "fr"]
    m = AGE_BAND.match(text.strip())
    if m:
        op, lo, hi, plus = m.groups()
        if op == "<":
            return f"moins de {lo} ans" if lang == "fr" else f"under {lo}"
        if op in (">=", "≥") or plus:
            return f"{lo} ans et plus" if lang == "fr" else f"{lo} and over"
        if hi:
            return f"{lo} à {hi} ans" if lang == "fr" else f"{lo} to {hi}"
    return category(text, lang)


def group_order(value: object) -> tuple[int, str]:
    """Sort key of fairness groups: age bands by their lower bound ('<25' first), then the others by name."""
    m = AGE_BAND.match(str(value).strip())
    if m:
        op, lo, _hi, _plus = m.groups()
        return (int(lo) - (1 if op == "<" else 0), "")
    return (10**6, str(value))
