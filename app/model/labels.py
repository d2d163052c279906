"""Readable labels (fr/en) for any feature name, and the sentences used as refusal reasons.

Feature names come from the SQL feature definitions and are not known in advance, so a label is
built by rules, most specific first:

1. a hand-written label for the ~40 most important base columns (`BASE`), e.g. EXT_SOURCE_2;
2. a one-hot column `<categorical base column><sep><category>` (sep `_`, `=`, `__` or `:`),
   e.g. NAME_EDUCATION_TYPE_Higher_education -> "Niveau d'études : Higher education";
3. a source-table prefix (`PREFIXES`: BUREAU_, PREV_, INST_, POS_, CC_, ...) and an aggregate suffix
   (`AGGREGATES`: _MEAN, _MAX, _MIN, _SUM, _COUNT, _SHARE, ...) around a base column, e.g.
   PREV_AMT_CREDIT_MEAN -> "Demandes précédentes : montant du crédit (moyenne)";
4. otherwise the name's tokens translated one by one (`TOKENS`), so every name gets a label.

Each label carries a *unit* that decides how values are shown (DAYS_BIRTH as an age in years,
amounts with thousands separators, shares as percentages) and a grammatical gender for French.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

LANGS = ("fr", "en")

# unit: how a value is displayed and compared
#   score    0..1 score, 2 decimals             amount  money, thousands separator, no decimals
#   ratio    2 decimals                         count   integer-ish, 1 decimal at most
#   share    0..1 shown as a percentage         flag    0/1 shown as yes/no
#   age      DAYS_BIRTH (negative days) shown as years of age
#   years_ago  negative days shown as years before the application
#   days_ago   negative days shown as days before the application
#   days     days (e.g. days past due)         number  plain number, up to 2 decimals


@dataclass(frozen=True)
class Label:
    fr: str
    en: str
    unit: str = "number"
    # French gender of the head noun of `fr`: "m" or "f"; "v" for composed labels, whose sentences
    # say "<label> : valeur élevée" so that the adjective always agrees
    gender: str = "m"

    def text(self, lang: str) -> str:
        return self.fr if lang == "fr" else self.en


# base column -> (fr, en, unit, French gender)
BASE: dict[str, tuple[str, str, str, str]] = {
    "EXT_SOURCE_1": ("Score externe 1", "External score 1", "score", "m"),
    "EXT_SOURCE_2": ("Score externe 2", "External score 2", "score", "m"),
    "EXT_SOURCE_3": ("Score externe 3", "External score 3", "score", "m"),
    "EXT_SOURCE_MEAN": ("Moyenne des scores externes", "Mean external score", "score", "f"),
    "EXT_SOURCE_MIN": ("Plus faible score externe", "Lowest external score", "score", "m"),
    "EXT_SOURCE_MAX": ("Plus fort score externe", "Highest external score", "score", "m"),
    "EXT_SOURCE_PROD": ("Produit des scores externes", "Product of external scores", "score", "m"),
    "EXT_SOURCE_STD": ("Dispersion des scores externes", "Spread of external scores", "score", "f"),
    "DAYS_BIRTH": ("Âge", "Age", "age", "m"),
    "AGE_YEARS": ("Âge", "Age", "count", "m"),
    "DAYS_EMPLOYED": ("Ancienneté dans l'emploi", "Time in current job", "years_ago", "f"),
    "YEARS_EMPLOYED": ("Ancienneté dans l'emploi (années)", "Years in current job", "count", "f"),
    "DAYS_EMPLOYED_ANOM": ("Emploi non renseigné (valeur 365243)", "Employment not given (value 365243)", "flag", "m"),
    "DAYS_EMPLOYED_PERC": ("Part de la vie passée dans l'emploi actuel", "Share of life in current job", "share", "f"),
    "EMPLOYED_BIRTH_RATIO": (
        "Part de la vie passée dans l'emploi actuel",
        "Share of life in current job",
        "share",
        "f",
    ),
    "DAYS_REGISTRATION": ("Ancienneté de l'enregistrement", "Time since registration", "years_ago", "f"),
    "DAYS_ID_PUBLISH": ("Ancienneté de la pièce d'identité", "Age of identity document", "years_ago", "f"),
    "DAYS_LAST_PHONE_CHANGE": ("Dernier changement de téléphone", "Last phone change", "days_ago", "m"),
    "AMT_INCOME_TOTAL": ("Revenu annuel", "Annual income", "amount", "m"),
    "AMT_CREDIT": ("Montant du crédit", "Credit amount", "amount", "m"),
    "AMT_ANNUITY": ("Annuité du prêt", "Loan annuity", "amount", "f"),
    "AMT_GOODS_PRICE": ("Prix du bien financé", "Price of the goods", "amount", "m"),
    "CREDIT_INCOME_RATIO": ("Crédit rapporté au revenu", "Credit to income ratio", "ratio", "m"),
    "ANNUITY_INCOME_RATIO": ("Taux d'effort (annuité / revenu)", "Annuity to income ratio", "ratio", "m"),
    "INCOME_ANNUITY_RATIO": ("Revenu rapporté à l'annuité", "Income to annuity ratio", "ratio", "m"),
    "CREDIT_ANNUITY_RATIO": ("Durée implicite du crédit (crédit / annuité)", "Credit to annuity ratio", "ratio", "f"),
    "ANNUITY_CREDIT_RATIO": ("Annuité rapportée au crédit", "Annuity to credit ratio", "ratio", "f"),
    "CREDIT_TERM": ("Durée implicite du crédit (annuité / crédit)", "Payment rate (annuity / credit)", "ratio", "f"),
    "PAYMENT_RATE": ("Taux de remboursement (annuité / crédit)", "Payment rate (annuity / credit)", "ratio", "m"),
    "CREDIT_GOODS_RATIO": ("Crédit rapporté au prix du bien", "Credit to goods price ratio", "ratio", "m"),
    "GOODS_CREDIT_RATIO": ("Prix du bien rapporté au crédit", "Goods price to credit ratio", "ratio", "m"),
    "INCOME_PER_PERSON": ("Revenu par membre du foyer", "Income per household member", "amount", "m"),
    "INCOME_PER_CHILD": ("Revenu par enfant", "Income per child", "amount", "m"),
    "CNT_CHILDREN": ("Nombre d'enfants", "Number of children", "count", "m"),
    "CNT_FAM_MEMBERS": ("Taille du foyer", "Household size", "count", "f"),
    "OWN_CAR_AGE": ("Âge du véhicule", "Age of the car", "count", "m"),
    "REGION_POPULATION_RELATIVE": ("Densité de population de la région", "Region population density", "ratio", "f"),
    "REGION_RATING_CLIENT": ("Note de la région", "Region rating", "count", "f"),
    "REGION_RATING_CLIENT_W_CITY": ("Note de la région (avec ville)", "Region rating (with city)", "count", "f"),
    "CODE_GENDER": ("Genre", "Gender", "flag", "m"),
    "FLAG_OWN_CAR": ("Possède une voiture", "Owns a car", "flag", "m"),
    "FLAG_OWN_REALTY": ("Propriétaire d'un logement", "Owns real estate", "flag", "m"),
    "NAME_CONTRACT_TYPE": ("Type de contrat", "Contract type", "flag", "m"),
    "NAME_EDUCATION_TYPE": ("Niveau d'études", "Education", "flag", "m"),
    "NAME_INCOME_TYPE": ("Type de revenu", "Income type", "flag", "m"),
    "NAME_FAMILY_STATUS": ("Situation familiale", "Family status", "flag", "f"),
    "NAME_HOUSING_TYPE": ("Type de logement", "Housing type", "flag", "m"),
    "NAME_TYPE_SUITE": ("Accompagnant lors de la demande", "Accompanied by", "flag", "m"),
    "OCCUPATION_TYPE": ("Profession", "Occupation", "flag", "f"),
    "ORGANIZATION_TYPE": ("Secteur de l'employeur", "Employer sector", "flag", "m"),
    "WEEKDAY_APPR_PROCESS_START": ("Jour de la demande", "Application weekday", "flag", "m"),
    "HOUR_APPR_PROCESS_START": ("Heure de la demande", "Application hour", "count", "f"),
    "DEF_30_CNT_SOCIAL_CIRCLE": ("Défauts dans l'entourage (30 j)", "Defaults in social circle (30 d)", "count", "m"),
    "DEF_60_CNT_SOCIAL_CIRCLE": ("Défauts dans l'entourage (60 j)", "Defaults in social circle (60 d)", "count", "m"),
    "OBS_30_CNT_SOCIAL_CIRCLE": ("Entourage observé (30 j)", "Observed social circle (30 d)", "count", "m"),
    "OBS_60_CNT_SOCIAL_CIRCLE": ("Entourage observé (60 j)", "Observed social circle (60 d)", "count", "m"),
    # aggregated features that matter most, written by hand
    "PREV_COUNT": ("Nombre de demandes précédentes", "Number of previous applications", "count", "m"),
    "PREV_REFUSED_SHARE": (
        "Part des demandes précédentes refusées",
        "Share of previous applications refused",
        "share",
        "f",
    ),
    "PREV_APPROVED_SHARE": (
        "Part des demandes précédentes acceptées",
        "Share of previous applications approved",
        "share",
        "f",
    ),
    "PREV_REFUSED_COUNT": ("Nombre de demandes précédentes refusées", "Previous applications refused", "count", "m"),
    "PREV_APPROVED_COUNT": ("Nombre de demandes précédentes acceptées", "Previous applications approved", "count", "m"),
    "BUREAU_COUNT": ("Nombre de crédits au bureau", "Number of credit bureau credits", "count", "m"),
    "BUREAU_ACTIVE_COUNT": ("Nombre de crédits en cours au bureau", "Active credit bureau credits", "count", "m"),
    "BUREAU_BALANCE_LATE_SHARE": ("Part des mois en retard (bureau)", "Share of months late (bureau)", "share", "f"),
    "INST_COUNT": ("Nombre d'échéances passées", "Number of past instalments", "count", "m"),
    "INST_LATE_SHARE": ("Part des échéances payées en retard", "Share of instalments paid late", "share", "f"),
    "INST_LATE30_SHARE": (
        "Part des échéances payées avec 30 j de retard",
        "Share of instalments 30+ days late",
        "share",
        "f",
    ),
    "INST_DPD_MEAN": ("Retard moyen de paiement", "Mean payment delay", "days", "m"),
    "INST_DPD_MAX": ("Plus long retard de paiement", "Longest payment delay", "days", "m"),
    "POS_DPD_SHARE": (
        "Part des mois en retard (crédits PDV/espèces)",
        "Share of months late (POS/cash loans)",
        "share",
        "f",
    ),
    "EXT_SOURCE_PRODUCT": ("Produit des scores externes", "Product of external scores", "score", "m"),
    "EXT_SOURCE_MISSING_COUNT": ("Scores externes manquants", "Missing external scores", "count", "m"),
    "CREDIT_TERM_MONTHS": ("Durée du crédit (mois)", "Credit term (months)", "count", "f"),
    "DAYS_EMPLOYED_PLACEHOLDER": (
        "Emploi non renseigné (valeur 365243)",
        "Employment not given (value 365243)",
        "flag",
        "m",
    ),
    "REGISTRATION_BIRTH_RATIO": (
        "Ancienneté de l'enregistrement rapportée à l'âge",
        "Registration age to age",
        "ratio",
        "f",
    ),
    "ID_PUBLISH_BIRTH_RATIO": ("Ancienneté de la pièce d'identité rapportée à l'âge", "ID age to age", "ratio", "f"),
    "PHONE_CHANGE_BIRTH_RATIO": (
        "Dernier changement de téléphone rapporté à l'âge",
        "Phone change to age",
        "ratio",
        "m",
    ),
    "CAR_AGE_AGE_RATIO": ("Âge du véhicule rapporté à l'âge", "Car age to age", "ratio", "m"),
    "CHILDREN_FAMILY_RATIO": ("Part des enfants dans le foyer", "Children share of household", "share", "f"),
    "ANNUITY_INCOME_PER_PERSON_RATIO": (
        "Annuité rapportée au revenu par personne",
        "Annuity to income per person",
        "ratio",
        "f",
    ),
    "CREDIT_MINUS_GOODS": ("Crédit au-delà du prix du bien", "Credit above goods price", "amount", "m"),
    "SOCIAL_DEF_30_RATIO": (
        "Taux de défaut dans l'entourage (30 j)",
        "Default rate in social circle (30 d)",
        "share",
        "m",
    ),
    "SOCIAL_DEF_60_RATIO": (
        "Taux de défaut dans l'entourage (60 j)",
        "Default rate in social circle (60 d)",
        "share",
        "m",
    ),
    "DOCUMENT_COUNT": ("Nombre de documents fournis", "Documents provided", "count", "m"),
    "CONTACT_COUNT": ("Nombre de moyens de contact", "Contact channels", "count", "m"),
    "ADDRESS_MISMATCH_COUNT": ("Adresses non concordantes", "Address mismatches", "count", "f"),
    "BUREAU_ENQUIRY_COUNT": ("Consultations du bureau de crédit", "Credit bureau enquiries", "count", "f"),
    "POS_LOAN_COUNT": ("Nombre de crédits PDV/espèces", "Number of POS/cash loans", "count", "m"),
    "INST_LOAN_COUNT": ("Nombre de crédits remboursés par échéances", "Loans with instalments", "count", "m"),
    "CC_CARD_COUNT": ("Nombre de cartes de crédit", "Number of credit cards", "count", "m"),
    "INST_NOT_PAID_COUNT": ("Échéances non payées", "Unpaid instalments", "count", "f"),
    "INST_UNDERPAID_SHARE": ("Part des échéances sous-payées", "Share of instalments underpaid", "share", "f"),
    "EDUCATION_LEVEL": ("Niveau d'études (échelle 0-4)", "Education level (0-4)", "count", "m"),
    "OWN_CAR": ("Possède une voiture", "Owns a car", "flag", "m"),
    "OWN_REALTY": ("Propriétaire d'un logement", "Owns real estate", "flag", "m"),
    "CONTRACT_REVOLVING": ("Crédit renouvelable", "Revolving loan", "flag", "m"),
    "EMERGENCYSTATE": ("Bâtiment en état d'urgence", "Building in emergency state", "flag", "m"),
    "WEEKDAY_APPR": ("Jour de la demande", "Application weekday", "count", "m"),
    "AMT_REQ_CREDIT_BUREAU_YEAR": (
        "Consultations du bureau de crédit (1 an)",
        "Credit bureau enquiries (year)",
        "count",
        "f",
    ),
    # columns of the child tables, used under a prefix (BUREAU_, PREV_, INST_, POS_, CC_)
    "DPD": ("Jours de retard", "Days past due", "days", "m"),
    "SK_DPD": ("Jours de retard", "Days past due", "days", "m"),
    "SK_DPD_DEF": ("Jours de retard (tolérance déduite)", "Days past due (with tolerance)", "days", "m"),
    "DBD": ("Jours d'avance de paiement", "Days paid early", "days", "m"),
    "PAYMENT_PERC": ("Part payée de l'échéance", "Share of instalment paid", "share", "f"),
    "PAYMENT_RATIO": ("Part payée de l'échéance", "Share of instalment paid", "share", "f"),
    "PAYMENT_DIFF": ("Reste dû sur l'échéance", "Instalment left unpaid", "amount", "m"),
    "LATE": ("Paiement en retard", "Late payment", "share", "m"),
    "CREDIT_ACTIVE_ACTIVE": ("Crédit en cours", "Active credit", "share", "m"),
    "ACTIVE": ("Crédits en cours", "Active credits", "count", "m"),
    "CLOSED": ("Crédits clos", "Closed credits", "count", "m"),
    "DAYS_CREDIT": ("Ancienneté du crédit", "Credit age", "days_ago", "f"),
    "DAYS_CREDIT_ENDDATE": ("Échéance du crédit", "Credit end date", "days", "f"),
    "CREDIT_DAY_OVERDUE": ("Jours de retard", "Days overdue", "days", "m"),
    "AMT_CREDIT_SUM": ("Montant des crédits", "Credit amount", "amount", "m"),
    "AMT_CREDIT_SUM_DEBT": ("Dette restante", "Outstanding debt", "amount", "f"),
    "AMT_CREDIT_SUM_OVERDUE": ("Montant en retard", "Amount overdue", "amount", "m"),
    "AMT_CREDIT_MAX_OVERDUE": ("Plus gros retard (montant)", "Largest overdue amount", "amount", "m"),
    "DEBT_CREDIT_RATIO": ("Dette rapportée au crédit", "Debt to credit ratio", "ratio", "f"),
    "AMT_APPLICATION": ("Montant demandé", "Amount applied for", "amount", "m"),
    "APP_CREDIT_PERC": ("Montant demandé rapporté au crédit accordé", "Applied to granted ratio", "ratio", "m"),
    "REFUSED": ("Demandes refusées", "Refused applications", "count", "f"),
    "APPROVED": ("Demandes acceptées", "Approved applications", "count", "f"),
    "CNT_PAYMENT": ("Nombre d'échéances", "Number of payments", "count", "m"),
    "DAYS_DECISION": ("Date de décision", "Decision date", "days_ago", "f"),
    "AMT_BALANCE": ("Solde de la carte", "Card balance", "amount", "m"),
    "AMT_CREDIT_LIMIT_ACTUAL": ("Plafond de la carte", "Card limit", "amount", "m"),
    "BALANCE_LIMIT_RATIO": ("Utilisation du plafond", "Credit limit utilisation", "ratio", "f"),
    "UTILIZATION": ("Utilisation du plafond", "Credit limit utilisation", "ratio", "f"),
    "AMT_INSTALMENT": ("Montant de l'échéance", "Instalment amount", "amount", "m"),
    "AMT_PAYMENT": ("Montant payé", "Amount paid", "amount", "m"),
    "CNT_INSTALMENT_FUTURE": ("Échéances restantes", "Instalments left", "count", "f"),
    "MONTHS_BALANCE": ("Mois du relevé", "Balance month", "count", "m"),
    "STATUS_DPD": ("Mois en retard", "Months past due", "count", "m"),
    # --- application: building (normalised values; suffixes _AVG, _MODE, _MEDI are aggregates)
    "APARTMENTS": ("Immeuble : appartements", "Building: apartments", "number", "v"),
    "BASEMENTAREA": ("Immeuble : surface du sous-sol", "Building: basement area", "number", "v"),
    "YEARS_BEGINEXPLUATATION": ("Immeuble : début d'exploitation", "Building: start of use", "number", "v"),
    "YEARS_BUILD": ("Immeuble : année de construction", "Building: year built", "number", "v"),
    "COMMONAREA": ("Immeuble : parties communes", "Building: common area", "number", "v"),
    "ELEVATORS": ("Immeuble : ascenseurs", "Building: elevators", "number", "v"),
    "ENTRANCES": ("Immeuble : entrées", "Building: entrances", "number", "v"),
    "FLOORSMAX": ("Immeuble : étage le plus haut", "Building: highest floor", "number", "v"),
    "FLOORSMIN": ("Immeuble : étage le plus bas", "Building: lowest floor", "number", "v"),
    "LANDAREA": ("Immeuble : surface du terrain", "Building: land area", "number", "v"),
    "LIVINGAPARTMENTS": ("Immeuble : logements habitables", "Building: living apartments", "number", "v"),
    "LIVINGAREA": ("Immeuble : surface habitable", "Building: living area", "number", "v"),
    "NONLIVINGAPARTMENTS": ("Immeuble : logements non habitables", "Building: non-living apartments", "number", "v"),
    "NONLIVINGAREA": ("Immeuble : surface non habitable", "Building: non-living area", "number", "v"),
    "TOTALAREA": ("Immeuble : surface totale", "Building: total area", "number", "v"),
    # --- application: contact and address flags, bureau enquiries
    "FLAG_MOBIL": ("Téléphone mobile fourni", "Mobile phone given", "flag", "m"),
    "FLAG_EMP_PHONE": ("Téléphone professionnel fourni", "Work phone given", "flag", "m"),
    "FLAG_WORK_PHONE": ("Téléphone au travail fourni", "Phone at work given", "flag", "m"),
    "FLAG_CONT_MOBILE": ("Joignable sur mobile", "Reachable on mobile", "flag", "m"),
    "FLAG_PHONE": ("Téléphone fixe fourni", "Home phone given", "flag", "m"),
    "FLAG_EMAIL": ("Adresse électronique fournie", "E-mail address given", "flag", "f"),
    "REG_REGION_NOT_LIVE_REGION": (
        "Région déclarée différente de la région de résidence",
        "Registered region differs from home region",
        "flag",
        "f",
    ),
    "REG_REGION_NOT_WORK_REGION": (
        "Région déclarée différente de la région du travail",
        "Registered region differs from work region",
        "flag",
        "f",
    ),
    "LIVE_REGION_NOT_WORK_REGION": (
        "Région de résidence différente de la région du travail",
        "Home region differs from work region",
        "flag",
        "f",
    ),
    "REG_CITY_NOT_LIVE_CITY": (
        "Ville déclarée différente de la ville de résidence",
        "Registered city differs from home city",
        "flag",
        "f",
    ),
    "REG_CITY_NOT_WORK_CITY": (
        "Ville déclarée différente de la ville du travail",
        "Registered city differs from work city",
        "flag",
        "f",
    ),
    "LIVE_CITY_NOT_WORK_CITY": (
        "Ville de résidence différente de la ville du travail",
        "Home city differs from work city",
        "flag",
        "f",
    ),
    "AMT_REQ_CREDIT_BUREAU_HOUR": (
        "Consultations du bureau de crédit (1 h)",
        "Credit bureau enquiries (hour)",
        "count",
        "f",
    ),
    "AMT_REQ_CREDIT_BUREAU_DAY": (
        "Consultations du bureau de crédit (1 jour)",
        "Credit bureau enquiries (day)",
        "count",
        "f",
    ),
    "AMT_REQ_CREDIT_BUREAU_WEEK": (
        "Consultations du bureau de crédit (1 semaine)",
        "Credit bureau enquiries (week)",
        "count",
        "f",
    ),
    "AMT_REQ_CREDIT_BUREAU_MON": (
        "Consultations du bureau de crédit (1 mois)",
        "Credit bureau enquiries (month)",
        "count",
        "f",
    ),
    "AMT_REQ_CREDIT_BUREAU_QRT": (
        "Consultations du bureau de crédit (3 mois)",
        "Credit bureau enquiries (quarter)",
        "count",
        "f",
    ),
    # --- credit bureau
    "BUREAU_ACTIVE_SHARE": ("Part des crédits en cours (bureau)", "Share of active credits (bureau)", "share", "f"),
    "BUREAU_CLOSED_SHARE": ("Part des crédits clos (bureau)", "Share of closed credits (bureau)", "share", "f"),
    "SOLD_OR_BAD_DEBT": ("Créances cédées ou douteuses", "Sold or bad debt", "share", "f"),
    "FOREIGN_CURRENCY": ("Crédits en devise étrangère", "Foreign-currency credits", "share", "m"),
    "CREDIT_TYPE": ("Types de crédit", "Credit types", "count", "m"),
    "CONSUMER": ("Crédits à la consommation", "Consumer credits", "share", "m"),
    "CARD": ("Cartes de crédit", "Credit cards", "share", "f"),
    "CAR_LOAN": ("Prêts automobiles", "Car loans", "share", "m"),
    "MORTGAGE": ("Prêts immobiliers", "Mortgages", "share", "m"),
    "MICROLOAN": ("Microcrédits", "Microloans", "share", "m"),
    "DAYS_ENDDATE": ("Fin prévue du crédit", "Planned credit end", "days", "f"),
    "DAYS_ENDDATE_FACT": ("Fin effective du crédit", "Actual credit end", "days_ago", "f"),
    "ENDDATE": ("Fin prévue du crédit", "Planned credit end", "days", "f"),
    "ENDDATE_FACT": ("Fin effective du crédit", "Actual credit end", "days_ago", "f"),
    "ENDED_EARLY_DAYS": ("Jours d'avance à la clôture", "Days ended early", "days", "m"),
    "DAYS_UPDATE": ("Dernière mise à jour", "Last update", "days_ago", "f"),
    "DAY_OVERDUE": ("Jours de retard", "Days overdue", "days", "m"),
    "OVERDUE": ("Crédits en retard", "Credits overdue", "share", "m"),
    "AMT_MAX_OVERDUE": ("Plus gros montant en retard", "Largest amount overdue", "amount", "m"),
    "PROLONG": ("Prolongations", "Extensions", "count", "f"),
    "AMT_DEBT": ("Dette restante", "Outstanding debt", "amount", "f"),
    "AMT_LIMIT": ("Plafond de crédit", "Credit limit", "amount", "m"),
    "AMT_OVERDUE": ("Montant en retard", "Amount overdue", "amount", "m"),
    "OVERDUE_DEBT_RATIO": ("Part de la dette en retard", "Overdue share of debt", "ratio", "f"),
    "BUREAU_WITH_BALANCE_COUNT": (
        "Crédits avec historique mensuel (bureau)",
        "Credits with a monthly history (bureau)",
        "count",
        "m",
    ),
    "BUREAU_BALANCE_MONTHS": ("Mois d'historique (bureau)", "Months of history (bureau)", "count", "m"),
    "BUREAU_BALANCE_MONTHS_MEAN": (
        "Mois d'historique par crédit (bureau, moyenne)",
        "Months of history per credit (bureau, mean)",
        "count",
        "m",
    ),
    "BUREAU_BALANCE_FIRST_MONTH": ("Premier mois connu (bureau)", "First month on record (bureau)", "count", "m"),
    "BUREAU_BALANCE_LATE30_SHARE": (
        "Part des mois avec plus de 30 j de retard (bureau)",
        "Share of months 30+ days late (bureau)",
        "share",
        "f",
    ),
    "BUREAU_BALANCE_CLOSED_SHARE": ("Part des mois clos (bureau)", "Share of months closed (bureau)", "share", "f"),
    "BUREAU_BALANCE_UNKNOWN_SHARE": (
        "Part des mois au statut inconnu (bureau)",
        "Share of months with an unknown status (bureau)",
        "share",
        "f",
    ),
    "BUREAU_BALANCE_LATE_SHARE_MAX": (
        "Part des mois en retard du crédit le plus touché (bureau)",
        "Share of months late on the worst credit (bureau)",
        "share",
        "f",
    ),
    "BUREAU_BALANCE_WORST_STATUS": ("Pire statut mensuel (bureau)", "Worst monthly status (bureau)", "count", "m"),
    # --- previous applications
    "PREV_CANCELED_SHARE": (
        "Part des demandes précédentes annulées",
        "Share of previous applications cancelled",
        "share",
        "f",
    ),
    "PREV_UNUSED_SHARE": ("Part des offres précédentes non utilisées", "Share of previous offers unused", "share", "f"),
    "PREV_CASH_SHARE": (
        "Part des prêts d'espèces (demandes précédentes)",
        "Share of cash loans (previous applications)",
        "share",
        "f",
    ),
    "PREV_CONSUMER_SHARE": (
        "Part des crédits à la consommation (demandes précédentes)",
        "Share of consumer loans (previous applications)",
        "share",
        "f",
    ),
    "PREV_REVOLVING_SHARE": (
        "Part des crédits renouvelables (demandes précédentes)",
        "Share of revolving loans (previous applications)",
        "share",
        "f",
    ),
    "PREV_CLIENT_NEW_SHARE": (
        "Part des demandes comme nouveau client",
        "Share of applications as a new client",
        "share",
        "f",
    ),
    "PREV_CLIENT_REPEATER_SHARE": (
        "Part des demandes comme client déjà connu",
        "Share of applications as a returning client",
        "share",
        "f",
    ),
    "PREV_PAY_THROUGH_BANK_SHARE": (
        "Part des remboursements par prélèvement bancaire (demandes précédentes)",
        "Share repaid through a bank (previous applications)",
        "share",
        "f",
    ),
    "PREV_REJECT_HC_SHARE": (
        "Part des refus pour le motif codé HC (demandes précédentes)",
        "Share refused for the coded reason HC (previous applications)",
        "share",
        "f",
    ),
    "PREV_REJECT_LIMIT_SHARE": (
        "Part des refus pour plafond dépassé (demandes précédentes)",
        "Share refused over the limit (previous applications)",
        "share",
        "f",
    ),
    "PREV_REJECT_SCOFR_SHARE": (
        "Part des refus pour le motif codé SCOFR (demandes précédentes)",
        "Share refused for the coded reason SCOFR (previous applications)",
        "share",
        "f",
    ),
    "PREV_CHANNEL_OFFICE_SHARE": (
        "Part des demandes faites en agence",
        "Share of applications made in a branch",
        "share",
        "f",
    ),
    "PREV_CHANNEL_COUNTRY_WIDE_SHARE": (
        "Part des demandes faites par le réseau national",
        "Share of applications through the country-wide network",
        "share",
        "f",
    ),
    "PREV_CHANNEL_AP_CASH_SHARE": (
        "Part des demandes faites par le canal espèces",
        "Share of applications through the cash channel",
        "share",
        "f",
    ),
    "PREV_PORTFOLIO_POS_SHARE": ("Part des crédits en point de vente", "Share of point-of-sale loans", "share", "f"),
    "PREV_WALK_IN_SHARE": ("Part des clients venus sans rendez-vous", "Share of walk-in clients", "share", "f"),
    "PREV_LAST_APPL_PER_CONTRACT_SHARE": (
        "Part des dernières demandes de chaque contrat",
        "Share of last applications of each contract",
        "share",
        "f",
    ),
    "PREV_YIELD_GROUP_MEAN": (
        "Groupe de taux des demandes précédentes (moyenne)",
        "Interest-rate group of previous applications (mean)",
        "number",
        "m",
    ),
    "PREV_INSURED_SHARE": (
        "Part des demandes précédentes assurées",
        "Share of previous applications insured",
        "share",
        "f",
    ),
    "AMT_DOWN_PAYMENT": ("Apport", "Down payment", "amount", "m"),
    "RATE_DOWN_PAYMENT": ("Taux d'apport", "Down payment rate", "share", "m"),
    "RATE_INTEREST_PRIMARY": ("Taux d'intérêt normalisé", "Normalised interest rate", "number", "m"),
    "RATE_INTEREST_PRIVILEGED": ("Taux d'intérêt préférentiel", "Privileged interest rate", "number", "m"),
    "HOUR_APPR": ("Heure de la demande", "Application hour", "count", "f"),
    "SELLERPLACE_AREA": ("Zone du vendeur", "Seller area", "number", "f"),
    "APP_CREDIT_RATIO": (
        "Montant demandé rapporté au crédit accordé",
        "Amount applied for to credit granted",
        "ratio",
        "m",
    ),
    "TOTAL_REPAID_CREDIT_RATIO": ("Total remboursé rapporté au crédit", "Total repaid to credit", "ratio", "m"),
    "DAYS_FIRST_DRAWING": ("Premier tirage", "First drawing", "days_ago", "m"),
    "DAYS_FIRST_DUE": ("Première échéance", "First due date", "days_ago", "f"),
    "DAYS_LAST_DUE_1ST": ("Dernière échéance prévue à l'origine", "Originally planned last due date", "days_ago", "f"),
    "DAYS_LAST_DUE": ("Dernière échéance", "Last due date", "days_ago", "f"),
    "DAYS_TERMINATION": ("Clôture prévue", "Expected termination", "days_ago", "f"),
    "LAST_DUE_SHIFT": ("Décalage de la dernière échéance", "Shift of the last due date", "days", "m"),
    # --- POS and cash loans
    "POS_MONTHS": ("Mois d'historique (crédits PDV/espèces)", "Months of history (POS/cash loans)", "count", "m"),
    "CNT_INSTALMENT": ("Nombre d'échéances", "Number of instalments", "count", "m"),
    "PAID_SHARE": ("Part remboursée", "Share repaid", "share", "f"),
    "DPD_DEF": ("Jours de retard (tolérance déduite)", "Days past due (with tolerance)", "days", "m"),
    "POS_DPD_DEF_SHARE": (
        "Part des mois en retard, tolérance déduite (crédits PDV/espèces)",
        "Share of months late, with tolerance (POS/cash loans)",
        "share",
        "f",
    ),
    "COMPLETED": ("Crédits terminés", "Completed loans", "share", "m"),
    "OTHER_STATUS": ("Autres statuts", "Other statuses", "share", "m"),
    "COMPLETED_LOAN": ("Crédits terminés", "Completed loans", "count", "m"),
    # --- instalments
    "PAID_INSTALMENT_RATIO": (
        "Échéances payées rapportées aux échéances dues",
        "Instalments paid to instalments due",
        "ratio",
        "f",
    ),
    "DAYS_ENTRY_PAYMENT": ("Date du paiement", "Payment date", "days_ago", "f"),
    "DAYS_INSTALMENT": ("Date d'échéance", "Due date", "days_ago", "f"),
    "NUMBER": ("Numéro d'échéance", "Instalment number", "count", "m"),
    "VERSION": ("Versions du calendrier", "Schedule versions", "count", "f"),
    # --- credit cards
    "CC_MONTHS": ("Mois d'historique (cartes de crédit)", "Months of history (credit cards)", "count", "m"),
    "LIMIT": ("Plafond de la carte", "Card limit", "amount", "m"),
    "AMT_DRAWINGS": ("Retraits", "Drawings", "amount", "m"),
    "AMT_DRAWINGS_ATM": ("Retraits au distributeur", "Cash machine drawings", "amount", "m"),
    "AMT_DRAWINGS_POS": ("Achats en magasin", "Point-of-sale drawings", "amount", "m"),
    "AMT_DRAWINGS_OTHER": ("Autres retraits", "Other drawings", "amount", "m"),
    "CNT_DRAWINGS": ("Nombre de retraits", "Number of drawings", "count", "m"),
    "CNT_DRAWINGS_ATM": ("Nombre de retraits au distributeur", "Number of cash machine drawings", "count", "m"),
    "CNT_DRAWINGS_POS": ("Nombre d'achats en magasin", "Number of point-of-sale drawings", "count", "m"),
    "DRAWINGS_LIMIT_RATIO": ("Retraits rapportés au plafond", "Drawings to limit", "ratio", "m"),
    "AMT_MIN_INSTALMENT": ("Échéance minimale", "Minimum instalment", "amount", "f"),
    "AMT_PAYMENT_TOTAL": ("Paiements totaux", "Total payments", "amount", "m"),
    "PAYMENT_MIN_INSTALMENT_RATIO": (
        "Paiement rapporté à l'échéance minimale",
        "Payment to minimum instalment",
        "ratio",
        "m",
    ),
    "PAID_LESS_THAN_MIN": ("Mois payés sous le minimum", "Months paid below the minimum", "share", "m"),
    "AMT_RECEIVABLE_PRINCIPAL": ("Capital restant dû", "Principal receivable", "amount", "m"),
    "AMT_RECEIVABLE": ("Montant à recevoir", "Amount receivable", "amount", "m"),
    "AMT_TOTAL_RECEIVABLE": ("Total à recevoir", "Total receivable", "amount", "m"),
    "CNT_INSTALMENT_MATURE": ("Échéances arrivées à terme", "Matured instalments", "count", "f"),
    "CC_DPD_SHARE": ("Part des mois en retard (cartes de crédit)", "Share of months late (credit cards)", "share", "f"),
    "CC_DPD_DEF_SHARE": (
        "Part des mois en retard, tolérance déduite (cartes de crédit)",
        "Share of months late, with tolerance (credit cards)",
        "share",
        "f",
    ),
}

# source-table prefixes of aggregated features (longest match wins)
PREFIXES: dict[str, tuple[str, str]] = {
    "BUREAU_ACTIVE": ("Bureau (crédits en cours)", "Bureau (active credits)"),
    "BUREAU_CLOSED": ("Bureau (crédits clos)", "Bureau (closed credits)"),
    "BUREAU": ("Bureau de crédit", "Credit bureau"),
    "BURO": ("Bureau de crédit", "Credit bureau"),
    "BB": ("Historique mensuel du bureau", "Bureau monthly history"),
    "PREV_APPROVED": ("Demandes précédentes acceptées", "Approved previous applications"),
    "PREV_REFUSED": ("Demandes précédentes refusées", "Refused previous applications"),
    "APPROVED": ("Demandes précédentes acceptées", "Approved previous applications"),
    "REFUSED": ("Demandes précédentes refusées", "Refused previous applications"),
    "PREV": ("Demandes précédentes", "Previous applications"),
    "INST": ("Remboursements passés", "Past instalments"),
    "INSTAL": ("Remboursements passés", "Past instalments"),
    "POS": ("Crédits point de vente / espèces", "POS and cash loans"),
    "CC": ("Cartes de crédit", "Credit cards"),
    "APP": ("Demande", "Application"),
}

# aggregate suffixes -> (fr, en, French gender of the aggregate noun, unit override or None)
AGGREGATES: dict[str, tuple[str, str, str, str | None]] = {
    "MEAN": ("moyenne", "mean", "f", None),
    "AVG": ("moyenne", "mean", "f", None),
    "MEDIAN": ("médiane", "median", "f", None),
    "MEDI": ("médiane", "median", "f", None),
    "MODE": ("mode", "mode", "m", None),
    "MAX": ("maximum", "max", "m", None),
    "MIN": ("minimum", "min", "m", None),
    "SUM": ("total", "total", "m", None),
    "STD": ("écart-type", "std. dev.", "m", "number"),
    "VAR": ("variance", "variance", "f", "number"),
    "LAST": ("dernière valeur", "last value", "f", None),
    "FIRST": ("première valeur", "first value", "f", None),
    "COUNT": ("nombre", "count", "m", "count"),
    "CNT": ("nombre", "count", "m", "count"),
    "SIZE": ("nombre", "count", "m", "count"),
    "NUNIQUE": ("valeurs distinctes", "distinct values", "f", "count"),
    "SHARE": ("part", "share", "f", "share"),
    "RATIO": ("ratio", "ratio", "m", "ratio"),
}

# word-by-word fallback
TOKENS: dict[str, tuple[str, str]] = {
    "AMT": ("montant", "amount"),
    "CNT": ("nombre", "count"),
    "DAYS": ("jours", "days"),
    "DPD": ("jours de retard", "days past due"),
    "SK": ("", ""),
    "CREDIT": ("crédit", "credit"),
    "ANNUITY": ("annuité", "annuity"),
    "INCOME": ("revenu", "income"),
    "GOODS": ("bien", "goods"),
    "PRICE": ("prix", "price"),
    "PAYMENT": ("paiement", "payment"),
    "INSTALMENT": ("échéance", "instalment"),
    "BALANCE": ("solde", "balance"),
    "LIMIT": ("plafond", "limit"),
    "DEBT": ("dette", "debt"),
    "OVERDUE": ("en retard", "overdue"),
    "DRAWINGS": ("retraits", "drawings"),
    "ATM": ("distributeur", "ATM"),
    "RATE": ("taux", "rate"),
    "DOWN": ("apport", "down"),
    "INTEREST": ("intérêt", "interest"),
    "DECISION": ("décision", "decision"),
    "APPLICATION": ("demande", "application"),
    "FLAG": ("indicateur", "flag"),
    "DOCUMENT": ("document", "document"),
    "REQ": ("demandes", "enquiries"),
    "HOUR": ("heure", "hour"),
    "DAY": ("jour", "day"),
    "WEEK": ("semaine", "week"),
    "MON": ("mois", "month"),
    "QRT": ("trimestre", "quarter"),
    "YEAR": ("année", "year"),
    "MONTHS": ("mois", "months"),
    "NAME": ("", ""),
    "TYPE": ("type", "type"),
    "STATUS": ("statut", "status"),
    "CONTRACT": ("contrat", "contract"),
    "REGION": ("région", "region"),
    "CITY": ("ville", "city"),
    "NOT": ("≠", "≠"),
    "LIVE": ("résidence", "home"),
    "WORK": ("travail", "work"),
    "REG": ("déclarée", "registered"),
    "PHONE": ("téléphone", "phone"),
    "EMAIL": ("e-mail", "e-mail"),
    "MOBIL": ("mobile", "mobile"),
    "EMP": ("professionnel", "work"),
    "CONT": ("joignable", "reachable"),
    "TOTAL": ("total", "total"),
    "ACTUAL": ("actuel", "actual"),
    "CURRENT": ("courant", "current"),
    "RECEIVABLE": ("à recevoir", "receivable"),
    "RECIVABLE": ("à recevoir", "receivable"),
    "PRINCIPAL": ("principal", "principal"),
    "FUTURE": ("à venir", "future"),
    "ENDDATE": ("date de fin", "end date"),
    "FACT": ("effective", "actual"),
    "PROLONG": ("prolongations", "extensions"),
    "UPDATE": ("mise à jour", "update"),
    "FIRST": ("premier", "first"),
    "DUE": ("échéance", "due"),
    "TERMINATION": ("clôture", "termination"),
    "EXT": ("externe", "external"),
    "SOURCE": ("score", "score"),
    "AGE": ("âge", "age"),
    "OWN": ("possédé", "own"),
    "CAR": ("voiture", "car"),
    "REALTY": ("logement", "real estate"),
    "SOCIAL": ("social", "social"),
    "CIRCLE": ("entourage", "circle"),
    "DEF": ("défauts", "defaults"),
    "OBS": ("observés", "observed"),
    "AVG": ("moyenne", "average"),
    "MODE": ("mode", "mode"),
    "MEDI": ("médiane", "median"),
    "AREA": ("surface", "area"),
    "APARTMENTS": ("appartements", "apartments"),
    "FLOORS": ("étages", "floors"),
    "FLOORSMAX": ("étages max", "floors max"),
    "FLOORSMIN": ("étages min", "floors min"),
    "LIVING": ("habitable", "living"),
    "MISSING": ("manquant", "missing"),
    "NAN": ("non renseigné", "missing"),
    "PERC": ("part", "share"),
    "DIFF": ("écart", "difference"),
    "PER": ("par", "per"),
    "PERSON": ("personne", "person"),
    "ACTIVE": ("en cours", "active"),
    "CLOSED": ("clos", "closed"),
    "APPROVED": ("accepté", "approved"),
    "REFUSED": ("refusé", "refused"),
    "LATE": ("retard", "late"),
    "PREV": ("précédent", "previous"),
    "COUNT": ("nombre", "count"),
    "SHARE": ("part", "share"),
    "MEAN": ("moyenne", "mean"),
    "SUM": ("total", "total"),
    "MAX": ("maximum", "max"),
    "MIN": ("minimum", "min"),
    "STD": ("écart-type", "std. dev."),
    "BUREAU": ("bureau", "bureau"),
    "INST": ("remboursement", "instalment"),
    "POS": ("point de vente", "POS"),
    "CC": ("carte", "card"),
}

# units guessed from tokens when the base column is not in BASE
_UNIT_RULES: list[tuple[str, str]] = [
    (r"(^|_)(SHARE|PERC|PCT)($|_)", "share"),
    (r"(^|_)RATIO($|_)", "ratio"),
    (r"(^|_)(DPD|DBD)($|_)", "days"),
    (r"(^|_)DAYS($|_)", "days_ago"),
    (r"(^|_)AMT($|_)", "amount"),
    (r"(^|_)(CNT|COUNT|NUM)($|_)", "count"),
    (r"(^|_)(FLAG|NFLAG)($|_)", "flag"),
    (r"_NOT_", "flag"),
    (r"^EXT_SOURCE", "score"),
]

# one-hot columns written as <GROUP>_<category> (GENDER_F, OCCUPATION_LABORERS, ...)
CATEGORY_GROUPS: dict[str, tuple[str, str, str]] = {
    "GENDER": ("Genre", "Gender", "m"),
    "CONTRACT": ("Type de contrat", "Contract type", "m"),
    "INCOME_TYPE": ("Type de revenu", "Income type", "m"),
    "EDUCATION": ("Niveau d'études", "Education", "m"),
    "FAMILY": ("Situation familiale", "Family status", "f"),
    "HOUSING": ("Logement", "Housing", "m"),
    "SUITE": ("Accompagnant", "Accompanied by", "m"),
    "OCCUPATION": ("Profession", "Occupation", "f"),
    "ORGANIZATION": ("Secteur de l'employeur", "Employer sector", "m"),
    "WALLS": ("Matériau des murs", "Wall material", "m"),
    "HOUSETYPE": ("Type de bâtiment", "Building type", "m"),
    "FONDKAPREMONT": ("Fonds de rénovation", "Renovation fund", "m"),
    "WEEKDAY": ("Jour de la demande", "Application weekday", "m"),
}
# French for the category levels found in one-hot column names (the English is the level itself)
CATEGORY_VALUES: dict[str, tuple[str, str]] = {
    "f": ("femme", "female"),
    "m": ("homme", "male"),
    "working": ("salarié", "working"),
    "commercial": ("commercial", "commercial associate"),
    "pensioner": ("retraité", "pensioner"),
    "state servant": ("fonctionnaire", "state servant"),
    "other": ("autre", "other"),
    "married": ("marié", "married"),
    "single": ("célibataire", "single"),
    "civil marriage": ("union civile", "civil marriage"),
    "separated": ("séparé", "separated"),
    "widow": ("veuf ou veuve", "widowed"),
    "house": ("maison ou appartement", "house or apartment"),
    "with parents": ("chez les parents", "with parents"),
    "municipal": ("logement municipal", "municipal apartment"),
    "rented": ("location", "rented"),
    "unaccompanied": ("seul", "unaccompanied"),
    "family": ("famille", "family"),
    "spouse": ("conjoint", "spouse"),
    "missing": ("non renseignée", "not given"),
    "laborers": ("ouvriers", "laborers"),
    "sales": ("vente", "sales staff"),
    "core": ("personnel de base", "core staff"),
    "managers": ("cadres", "managers"),
    "drivers": ("chauffeurs", "drivers"),
    "high skill tech": ("techniciens qualifiés", "high-skill technicians"),
    "accountants": ("comptables", "accountants"),
    "medicine": ("santé", "medicine"),
    "security": ("sécurité", "security"),
    "cooking": ("cuisine", "cooking"),
    "cleaning": ("nettoyage", "cleaning"),
    "low skill": ("peu qualifiés", "low-skill laborers"),
    "none": ("aucun", "none"),
    "business": ("entreprise", "business"),
    "self employed": ("indépendant", "self-employed"),
    "public": ("secteur public", "public sector"),
    "education": ("enseignement", "education"),
    "trade": ("commerce", "trade"),
    "industry": ("industrie", "industry"),
    "transport": ("transports", "transport"),
    "construction": ("bâtiment", "construction"),
    "finance": ("finance", "finance"),
    "services": ("services", "services"),
    "other sector": ("autre secteur", "other sector"),
    "reg oper": ("compte régional", "regional account"),
    "reg oper spec": ("compte régional spécial", "special regional account"),
    "org spec": ("compte spécial d'organisme", "special organisation account"),
    "block of flats": ("immeuble collectif", "block of flats"),
    "panel": ("panneaux", "panel"),
    "stone brick": ("pierre ou brique", "stone or brick"),
    "block": ("blocs", "block"),
}

# period suffixes: INST_LATE_SHARE_12M
PERIODS: dict[str, tuple[str, str]] = {
    "12M": ("12 derniers mois", "last 12 months"),
    "6M": ("6 derniers mois", "last 6 months"),
    "3M": ("3 derniers mois", "last 3 months"),
    "LAST_YEAR": ("dernière année", "last year"),
}

_ONE_HOT_SEPARATORS = ("=", ":", "__", "_")
_GROUPS_LONGEST_FIRST = sorted(CATEGORY_GROUPS, key=len, reverse=True)
_GROUP_STARTS = tuple(g + "_" for g in CATEGORY_GROUPS)  # one C call rules most names out
_PREFIXES_LONGEST_FIRST = sorted(PREFIXES, key=len, reverse=True)
_AGGREGATES_LONGEST_FIRST = sorted(AGGREGATES, key=len, reverse=True)
_CATEGORICAL_BASES = sorted(
    [k for k, v in BASE.items() if v[2] == "flag" and not k.startswith("FLAG_")]
    + ["CODE_GENDER", "FONDKAPREMONT_MODE", "HOUSETYPE_MODE", "WALLSMATERIAL_MODE", "EMERGENCYSTATE_MODE"],
    key=len,
    reverse=True,
)
_ONE_HOT_PREFIXES = [(base, sep) for base in _CATEGORICAL_BASES for sep in _ONE_HOT_SEPARATORS]
_ONE_HOT_STARTS = tuple(base + sep for base, sep in _ONE_HOT_PREFIXES)


def _tokens_label(name: str) -> tuple[str, str]:
    fr_words, en_words = [], []
    for tok in name.split("_"):
        if not tok:
            continue
        fr, en = TOKENS.get(tok.upper(), (tok.lower(), tok.lower()))
        if fr:
            fr_words.append(fr)
        if en:
            en_words.append(en)
    fr = " ".join(fr_words) or name
    en = " ".join(en_words) or name
    return fr[:1].upper() + fr[1:], en[:1].upper() + en[1:]


def _guess_unit(name: str) -> str:
    for pattern, unit in _UNIT_RULES:
        if re.search(pattern, name.upper()):
            return unit
    return "number"


def _base_label(core: str) -> Label:
    key = core.upper()
    if key in BASE:
        fr, en, unit, gender = BASE[key]
        return Label(fr, en, unit, gender)
    fr, en = _tokens_label(core)
    return Label(fr, en, _guess_unit(core), "v")


def _lower_first(text: str) -> str:
    # keep acronyms like "EXT" but lower a capitalised first word
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


@lru_cache(maxsize=4096)
def label_for(name: str) -> Label:
    """The label of any feature name (never empty)."""
    upper = name.upper()
    if upper in BASE:
        return _base_label(upper)
    for rule in (_one_hot_label, _group_label, _period_label, _document_label):
        found = rule(name, upper)
        if found is not None:
            return found
    return _composed_label(name, upper)


def _one_hot_label(name: str, upper: str) -> Label | None:
    """A one-hot column of a known categorical base column."""
    for base, sep in _ONE_HOT_PREFIXES if upper.startswith(_ONE_HOT_STARTS) else ():
        if upper.startswith(base + sep) and len(name) > len(base) + len(sep):
            category = name[len(base) + len(sep) :].replace("_", " ").strip() or "?"
            fr, en = BASE[base][0], BASE[base][1]
            return Label(f"{fr} : {category}", f"{en}: {category}", "flag", BASE[base][3])
    return None


def _group_label(name: str, upper: str) -> Label | None:
    """A category of a known group of one-hot columns."""
    for group in _GROUPS_LONGEST_FIRST if upper.startswith(_GROUP_STARTS) else ():
        if upper.startswith(group + "_") and len(name) > len(group) + 1:
            fr, en, gender = CATEGORY_GROUPS[group]
            category = name[len(group) + 1 :].replace("_", " ").lower()
            cat_fr, cat_en = CATEGORY_VALUES.get(category, (category, category))
            return Label(f"{fr} : {cat_fr}", f"{en}: {cat_en}", "flag", gender)
    return None


def _period_label(name: str, upper: str) -> Label | None:
    """A feature over a period: the inner feature's label, the period in brackets."""
    for period, (pfr, pen) in PERIODS.items():
        if upper.endswith("_" + period) and len(name) > len(period) + 1:
            inner = label_for(name[: -(len(period) + 1)])
            return Label(f"{inner.fr} ({pfr})", f"{inner.en} ({pen})", inner.unit, "v")
    return None


def _document_label(_name: str, upper: str) -> Label | None:
    document = re.fullmatch(r"FLAG_DOCUMENT_(\d+)", upper)
    if document:
        n = document.group(1)
        return Label(f"Document n° {n} fourni", f"Document {n} provided", "flag", "m")
    return None


def _split_prefix_aggregate(name: str, upper: str) -> tuple[tuple | None, tuple | None, str]:
    """(prefix, aggregate, core) of a name such as BUREAU_AMT_CREDIT_SUM_MEAN; None for a part it lacks."""
    core = name
    prefix = None
    for p in _PREFIXES_LONGEST_FIRST:
        if upper.startswith(p + "_") and len(core) > len(p) + 1:
            prefix = PREFIXES[p]
            core = core[len(p) + 1 :]
            break
    aggregate = None
    # a known ratio column keeps its _RATIO (BUREAU_DEBT_CREDIT_RATIO is DEBT_CREDIT_RATIO, not a ratio of DEBT_CREDIT)
    known_ratio = core.upper() in BASE and core.upper().endswith("_RATIO")
    for a in () if known_ratio else _AGGREGATES_LONGEST_FIRST:
        if core.upper().endswith("_" + a) and len(core) > len(a) + 1:
            aggregate = AGGREGATES[a]
            core = core[: -(len(a) + 1)]
            break
    return prefix, aggregate, core


def _composed_label(name: str, upper: str) -> Label:
    """A table prefix and an aggregate around a base column; the name itself, humanised, otherwise."""
    prefix, aggregate, core = _split_prefix_aggregate(name, upper)
    if prefix is None and aggregate is None:
        return _base_label(name)
    base = _base_label(core)
    fr, en, unit = base.fr, base.en, base.unit
    if aggregate is not None:
        agg_fr, agg_en, _agg_gender, agg_unit = aggregate
        if agg_unit == "count" and base.unit not in ("count", "days"):
            fr, en = f"{fr} (nombre)", f"{en} (count)"
            unit = "count"
        elif agg_unit == "share" or (agg_unit == "ratio" and base.unit in ("flag", "share")):
            fr, en, unit = f"{fr} (part)", f"{en} (share)", "share"
        else:
            fr, en = f"{fr} ({agg_fr})", f"{en} ({agg_en})"
            unit = agg_unit or (base.unit if base.unit != "flag" else "share")
    if prefix is not None:
        fr = f"{prefix[0]} : {_lower_first(fr)}"
        en = f"{prefix[1]}: {_lower_first(en)}"
    return Label(fr, en, unit, "v")


def label(name: str, lang: str = "fr") -> str:
    return label_for(name).text(lang)


def labels(names: list[str], lang: str = "fr") -> dict[str, str]:
    return {n: label(n, lang) for n in names}


# ----------------------------------------------------------------------------------------- values


def display_value(unit: str, v: float) -> float:
    """The value as shown to people (DAYS_BIRTH -> age in years, ...); comparisons use it too."""
    if unit == "age":
        return -v / 365.25
    if unit == "years_ago":
        return -v / 365.25
    if unit == "days_ago":
        return -v
    return v


def _group(n: int, lang: str) -> str:
    s = f"{n:,}"
    return s.replace(",", "\u202f") if lang == "fr" else s


def format_value(unit: str, v: float | None, lang: str = "fr") -> str:
    """A feature value formatted for people, in the label's unit."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "non renseigné" if lang == "fr" else "missing"
    d = display_value(unit, float(v))
    if unit == "flag":
        yes = d >= 0.5
        return ("oui" if yes else "non") if lang == "fr" else ("yes" if yes else "no")
    if unit == "age":
        text = f"{d:.0f} ans" if lang == "fr" else f"{d:.0f} years"
    elif unit == "years_ago":
        text = f"{d:.1f} ans" if lang == "fr" else f"{d:.1f} years"
    elif unit in ("days_ago", "days"):
        n = round(d)
        return f"{_group(n, lang)} j" if lang == "fr" else f"{_group(n, lang)} day{'' if abs(n) == 1 else 's'}"
    elif unit == "amount":
        return _group(round(d), lang)
    elif unit == "share":
        pct = d * 100
        return f"{pct:.0f}\u00a0%" if lang == "fr" else f"{pct:.0f}%"
    elif unit == "count":
        text = f"{d:.0f}" if abs(d - round(d)) < 0.05 else f"{d:.1f}"
    else:  # score, ratio, number
        text = f"{d:.2f}" if abs(d) < 1000 else _group(round(d), lang)
    return text.replace(".", ",") if lang == "fr" else text


def reason_sentence(
    name: str, value: float | None, typical: float | None, lang: str = "fr", unit: str | None = None
) -> str:
    """One sentence saying why a feature pushes towards refusal, compared with a typical accepted client.

    e.g. "External score 2 is low (0.21; typical accepted client 0.56)"
         "Score externe 2 faible (0,21 ; client accepté typique 0,56)"
    `unit` overrides the label's unit (the explainer passes "flag" for columns that are 0/1 in the data).
    """
    lab = label_for(name)
    if unit is not None and unit != lab.unit:
        lab = Label(lab.fr, lab.en, unit, lab.gender)
    text = lab.text(lang)
    missing = value is None or math.isnan(value)
    has_typ = typical is not None and not math.isnan(typical)
    typ_text = format_value(lab.unit, typical, lang) if has_typ else None
    fem = lab.gender == "f"
    if lab.gender == "v" and lang == "fr":  # composed label: "<label> : valeur élevée"
        text, fem = f"{text} : valeur", True
    if lab.unit == "flag" and not missing:
        val = format_value("flag", value, lang)
        if lang == "fr":
            tail = f" ; client accepté typique : {typ_text}" if typ_text else ""
            return f"{lab.fr} ({val}{tail})"
        tail = f"; typical accepted client: {typ_text}" if typ_text else ""
        return f"{text} ({val}{tail})"
    if missing:
        word = ("non renseignée" if fem else "non renseigné") if lang == "fr" else "is missing"
        if lang == "fr":
            return f"{text} {word}" + (f" (client accepté typique {typ_text})" if typ_text else "")
        return f"{text} {word}" + (f" (typical accepted client {typ_text})" if typ_text else "")
    val_text = format_value(lab.unit, value, lang)
    if has_typ:
        d, t = display_value(lab.unit, float(value)), display_value(lab.unit, float(typical))
        direction = "low" if d < t else "high" if d > t else "same"
    else:
        direction = "same"
    if lang == "fr":
        word = {
            "low": "faible",
            "high": "élevée" if fem else "élevé",
            "same": "défavorable",
        }[direction]
        if lab.unit == "age":
            word = {"low": "peu élevé", "high": "élevé", "same": "défavorable"}[direction]
        inside = f"{val_text} ; client accepté typique {typ_text}" if typ_text else val_text
        return f"{text} {word} ({inside})"
    word = {"low": "is low", "high": "is high", "same": "is unfavourable"}[direction]
    if lab.unit == "age":
        word = {"low": "is low", "high": "is high", "same": "is unfavourable"}[direction]
    inside = f"{val_text}; typical accepted client {typ_text}" if typ_text else val_text
    return f"{text} {word} ({inside})"
