"""The drift verdict in the reader's words, above Evidently's detail (which is English only): which features
drifted and by how much, the verdict and its reasons, the window judged, every number through the locale layer.

Built from the API's structured answer (GET /monitoring/drift, app.service.schemas.DriftReport and its
DriftVerdict from app.monitoring.verdict), never by translating the verdict's English `reasons` strings: the same
facts, worded here in French and English.
"""

from __future__ import annotations

from app.monitoring.verdict import PSI_ACT, PSI_SEVERE, psi_level
from app.service.schemas import DriftReport
from ui import locale
from ui.i18n import feature_label

NAMED = 5  # drifted features named in the sentence; the others are counted

TEXT = {
    "fr": {
        "level": {"stable": "stable", "watch": "à surveiller", "act": "à traiter"},
        "verdict": "Verdict : {level}.",
        "window": "Fenêtre jugée : {requests}, du {first} au {last} (UTC), comparée à l'échantillon d'entraînement"
        " de {ref} clients.",
        "window_open": "Fenêtre jugée : {requests}, comparée à l'échantillon d'entraînement de {ref} clients.",
        "requests": ("la dernière requête", "les {n} dernières requêtes"),
        "none": "Aucune variable n'a dérivé au-delà du seuil PSI {threshold} ({total} variables suivies).",
        "some": "{count} au-delà du seuil PSI {threshold} : {names}.",
        "count": ("{n} variable sur {{total}} a dérivé", "{n} variables sur {{total}} ont dérivé"),
        "more": ("et {n} autre", "et {n} autres"),
        "named": "{name} (PSI {psi})",
        "top": "{name}, rang {rank} par importance ({share} du modèle) : PSI {psi}, au-delà du seuil d'action {act}.",
        "weighted": "PSI des variables pondéré par leur importance : {psi} ({level}).",
        "severe": "{count} hors des principales variables, PSI au-delà de {severe} : {names}.",
        "severe_count": ("{n} variable a changé en bloc", "{n} variables ont changé en bloc"),
        "minor": "{count} au-delà de {act} (à surveiller) : {names}.",
        "minor_count": ("{n} variable secondaire", "{n} variables secondaires"),
        "score": "Distribution des scores : PSI {psi} ({level}).",
        "decisions": "Taux de refus {rate} sur la fenêtre contre {ref} à l'entraînement (z = {z}, p {p} ; {level}).",
        "p_small": "< 0,001",
    },
    "en": {
        "level": {"stable": "stable", "watch": "watch", "act": "act"},
        "verdict": "Verdict: {level}.",
        "window": "Window judged: {requests}, from {first} to {last} (UTC), against the training sample of {ref}"
        " clients.",
        "window_open": "Window judged: {requests}, against the training sample of {ref} clients.",
        "requests": ("the last request", "the last {n} requests"),
        "none": "No feature drifted beyond the PSI threshold {threshold} ({total} features followed).",
        "some": "{count} beyond the PSI threshold {threshold}: {names}.",
        "count": ("{n} feature of {{total}} drifted", "{n} features of {{total}} drifted"),
        "more": ("and {n} other", "and {n} others"),
        "named": "{name} (PSI {psi})",
        "top": "{name}, importance rank {rank} ({share} of the model): PSI {psi}, beyond the action threshold {act}.",
        "weighted": "Importance-weighted feature PSI: {psi} ({level}).",
        "severe": "{count} outside the main features, PSI beyond {severe}: {names}.",
        "severe_count": ("{n} feature moved wholesale", "{n} features moved wholesale"),
        "minor": "{count} beyond {act} (watch): {names}.",
        "minor_count": ("{n} minor feature", "{n} minor features"),
        "score": "Score distribution: PSI {psi} ({level}).",
        "decisions": "Refusal rate {rate} in the window against {ref} at training (z = {z}, p {p}; {level}).",
        "p_small": "< 0.001",
    },
}


def _plural(n: int, forms: tuple[str, str], lang: str) -> str:
    return locale.plural(n, lang, *forms)


def _names(items: list[tuple[str, float]], lang: str, tx: dict) -> str:
    shown = [tx["named"].format(name=feature_label(n, lang), psi=locale.fixed(p, lang, 2)) for n, p in items[:NAMED]]
    if len(items) > NAMED:
        shown.append(_plural(len(items) - NAMED, tx["more"], lang))
    return ", ".join(shown)


def sentences(drift: DriftReport, lang: str) -> list[str]:
    """The summary, one sentence per fact: verdict, window, drifted features, then each reason of the verdict."""
    lg = "en" if lang == "en" else "fr"
    tx = TEXT[lg]
    out: list[str] = []
    verdict = drift.verdict
    if verdict is not None and verdict.level in tx["level"]:
        out.append(tx["verdict"].format(level=tx["level"][verdict.level]))
    w = drift.window
    ref_rows = drift.reference.rows if drift.reference is not None else None
    requests = _plural(w.rows, tx["requests"], lg)
    ref = locale.number(ref_rows, lg)
    if w.first_ts and w.last_ts:
        first, last = locale.when(w.first_ts, lg), locale.when(w.last_ts, lg)
        out.append(tx["window"].format(requests=requests, first=first, last=last, ref=ref))
    else:
        out.append(tx["window_open"].format(requests=requests, ref=ref))
    threshold = locale.fixed(drift.psi_threshold, lg, 2)
    total = locale.number(len(drift.features), lg)
    drifted = sorted(((f.feature, f.psi) for f in drift.features if f.drifted), key=lambda x: -x[1])
    if drifted:
        count = _plural(len(drifted), tx["count"], lg).replace("{total}", total)
        out.append(tx["some"].format(count=count, threshold=threshold, names=_names(drifted, lg, tx)))
    else:
        out.append(tx["none"].format(threshold=threshold, total=total))
    if verdict is not None:
        out += _reasons(verdict, lg, tx)
    return [s[:1].upper() + s[1:] for s in out]


def _reasons(verdict, lg: str, tx: dict) -> list[str]:
    """The verdict's reasons, from its structured signals (the order of app.monitoring.verdict's own)."""
    out = []
    level = tx["level"]
    act = locale.fixed(PSI_ACT, lg, 2)
    feats = verdict.features
    if feats is not None:
        for t in feats.top:
            if t.level == "act":
                out.append(
                    tx["top"].format(
                        name=feature_label(t.feature, lg),
                        rank=locale.number(t.rank, lg),
                        share=locale.percent(t.importance_share, lg, 0),
                        psi=locale.fixed(t.psi, lg, 2),
                        act=act,
                    )
                )
        weighted_level = psi_level(feats.weighted_psi)
        if weighted_level != "stable":
            out.append(tx["weighted"].format(psi=locale.fixed(feats.weighted_psi, lg, 3), level=level[weighted_level]))
        severe = [(m.feature, m.psi) for m in feats.minor_drifted if m.level == "act"]
        if severe:
            count = _plural(len(severe), tx["severe_count"], lg)
            names = _names(severe, lg, tx)
            out.append(tx["severe"].format(count=count, severe=locale.fixed(PSI_SEVERE, lg, 1), names=names))
        minor = [(m.feature, m.psi) for m in feats.minor_drifted if m.level == "watch"]
        if minor:
            out.append(
                tx["minor"].format(
                    count=_plural(len(minor), tx["minor_count"], lg), act=act, names=_names(minor, lg, tx)
                )
            )
    score = verdict.score
    if score is not None and score.psi is not None and score.level != "stable":
        out.append(tx["score"].format(psi=locale.fixed(score.psi, lg, 3), level=level.get(score.level, score.level)))
    d = verdict.decisions
    if d is not None and d.level != "stable":
        p = tx["p_small"] if d.p_value < 0.001 else "= " + locale.fixed(d.p_value, lg, 3)
        out.append(
            tx["decisions"].format(
                rate=locale.percent(d.window_refusal_rate, lg),
                ref=locale.percent(d.reference_refusal_rate, lg),
                z=locale.fixed(d.z, lg, 1),
                p=p,
                level=level.get(d.level, d.level),
            )
        )
    return out
