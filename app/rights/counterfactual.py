"""What would change the outcome: the smallest realistic change of a refused client's actionable inputs that the
model would accept (a counterfactual explanation).

Method
------
- Levers (LEVERS, chosen by the setting CREDIT_CF_LEVERS): a few raw application inputs a client can actually
  change, each a magnitude s >= 0 in the input's own unit: borrow less (`credit_amount`: AMT_CREDIT - s, the
  annuity following at the same term), repay over longer (`term`: CREDIT_TERM_MONTHS + s months, annuity = credit /
  term), add a co-borrower's income (`coborrower_income`: AMT_INCOME_TOTAL + s). Nothing else moves: protected or
  immutable attributes (sex, age, family situation, children, past defaults, external scores: PROTECTED_COLUMNS)
  are never a lever, which is checked when the module loads and when the setting is read.
- Every candidate application goes through the ingest's own SQL (app.data.whatif, the what-if path), so derived
  features (credit / income, annuity / income, term, income per person...) follow; the other sources' features
  keep the logged values. Candidates are scored in one batch by the compiled model (the same library as score()).
- Norm: L1 distance with each lever scaled by the median absolute deviation (MAD) of its input over the model's
  training reference sample (DiCE's default proximity, Wachter et al.): cost = sum_i s_i / MAD_i. Bounds come
  from the same sample: the credit stays above its 5th percentile, the term below its 99th, a co-borrower earns
  at most the 90th percentile of incomes. Suggested changes are rounded up to round figures (500 of credit, a
  whole month, 100 of income) and re-checked after rounding.
- Search: a grid over the lever box (all levers together, finer with fewer levers), the cheapest accepted point,
  then a refinement batch that shrinks each lever of that point in turn (the others kept), then the rounded
  refined point and the cheapest accepted grid points in one last batch. Deterministic; 3 or 4 SQL + scoring
  batches of at most a few hundred rows, only the features that move with the levers recomputed (budget 50 ms
  per client, tests/test_counterfactual.py measures it).
- Check: the chosen change is replayed through `app.data.whatif.what_if` (the path the API's what-if uses) and
  scored with `predict_row`; only a change whose re-score is an acceptance is returned (`verified`).

Why not Alibi's or DiCE's optimisers: Alibi's Counterfactual / CounterfactualProto (Wachter, Van Looveren)
minimise a loss by gradient descent, and a tree ensemble is piecewise constant (zero gradient almost everywhere;
numerical gradients need a step larger than a leaf); DiCE's model-agnostic random / genetic / KD-tree methods
sample many features at once and must then be told which ones may move. Here only two or three inputs move, so
an exhaustive grid in the scaled space is cheap with the batch-compiled model, exact up to the grid step, and
gives the same answer every time (a letter must be reproducible).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.errors import CreditError

# raw application columns that are never changed by a suggestion: protected grounds (sex, age, family situation),
# immutable facts and the client's past (defaults in the social circle, external bureau scores)
PROTECTED_COLUMNS = frozenset(
    {
        "CODE_GENDER",
        "DAYS_BIRTH",
        "NAME_FAMILY_STATUS",
        "CNT_CHILDREN",
        "CNT_FAM_MEMBERS",
        "DEF_30_CNT_SOCIAL_CIRCLE",
        "DEF_60_CNT_SOCIAL_CIRCLE",
        "OBS_30_CNT_SOCIAL_CIRCLE",
        "OBS_60_CNT_SOCIAL_CIRCLE",
        "EXT_SOURCE_1",
        "EXT_SOURCE_2",
        "EXT_SOURCE_3",
        "DAYS_EMPLOYED",
        "DAYS_REGISTRATION",
        "DAYS_ID_PUBLISH",
        "NAME_EDUCATION_TYPE",
        "NAME_INCOME_TYPE",
        "OCCUPATION_TYPE",
    }
)


@dataclass(frozen=True)
class Lever:
    name: str
    columns: tuple[str, ...]  # the raw application columns this lever writes
    feature: str  # the model feature whose training distribution gives the lever's scale and bound
    unit: str  # for sentences: "amount" or "months"
    round_to: float  # suggestions are rounded to a multiple of this, in the direction of the change


LEVERS: dict[str, Lever] = {
    "credit_amount": Lever("credit_amount", ("AMT_CREDIT", "AMT_ANNUITY"), "AMT_CREDIT", "amount", 500.0),
    "term": Lever("term", ("AMT_ANNUITY",), "CREDIT_TERM_MONTHS", "months", 1.0),
    "coborrower_income": Lever("coborrower_income", ("AMT_INCOME_TOTAL",), "AMT_INCOME_TOTAL", "amount", 100.0),
}
DEFAULT_LEVERS = ("credit_amount", "term", "coborrower_income")
VARYING = ("AMT_CREDIT", "AMT_ANNUITY", "AMT_INCOME_TOTAL")  # the raw columns the levers write, together
GRID = {1: 40, 2: 14, 3: 6}  # grid steps per lever, by number of levers (40 / 224 / 342 candidates)
REFINE = 12  # candidates per lever in the refinement batch
ROUNDED_POOL = 12  # accepted grid points rounded and re-scored beside the refined one
BUDGET_MS = 50.0

for _lever in LEVERS.values():  # a lever may never write a protected column (checked once, at import)
    assert not set(_lever.columns) & PROTECTED_COLUMNS, _lever


class CounterfactualError(CreditError, ValueError):
    pass


def parse_levers(text: str) -> tuple[str, ...]:
    """The setting CREDIT_CF_LEVERS ("credit_amount,term,coborrower_income") as lever names; unknown names and
    protected columns are refused with the list of allowed levers."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    bad = [n for n in names if n not in LEVERS]
    if bad:
        protected = [n for n in bad if n.upper() in PROTECTED_COLUMNS]
        why = f" ({', '.join(protected)} may never be changed: protected or immutable)" if protected else ""
        raise CounterfactualError(
            f"unknown counterfactual lever(s) {', '.join(bad)}{why}; allowed: {', '.join(LEVERS)}"
        )
    if not names:
        raise CounterfactualError(f"no counterfactual lever given; allowed: {', '.join(LEVERS)}")
    return names


@dataclass
class Scales:
    """Per-lever scale (MAD) and upper bound of the magnitude, from the model's training reference sample."""

    mad: dict[str, float]
    credit_floor: float  # 5th percentile of AMT_CREDIT
    term_cap: float  # 99th percentile of CREDIT_TERM_MONTHS
    income_add_cap: float  # 90th percentile of AMT_INCOME_TOTAL (a plausible co-borrower's income)

    @classmethod
    def from_reference(cls, reference: np.ndarray, feature_names: list[str]) -> Scales:
        index = {n: i for i, n in enumerate(feature_names)}
        missing = [lv.feature for lv in LEVERS.values() if lv.feature not in index]
        if missing:
            raise CounterfactualError(f"the model has no feature {', '.join(missing)}: no counterfactual for it")

        def col(name: str) -> np.ndarray:
            c = reference[:, index[name]].astype(np.float64)
            c = c[np.isfinite(c)]
            if c.size == 0:
                raise CounterfactualError(f"the training reference has no value of {name}")
            return c

        mad = {}
        for lv in LEVERS.values():
            c = col(lv.feature)
            m = float(np.median(np.abs(c - np.median(c))))
            mad[lv.name] = m if m > 0 else float(np.std(c)) or 1.0
        return cls(
            mad=mad,
            credit_floor=float(np.quantile(col("AMT_CREDIT"), 0.05)),
            term_cap=float(np.quantile(col("CREDIT_TERM_MONTHS"), 0.99)),
            income_add_cap=float(np.quantile(col("AMT_INCOME_TOTAL"), 0.90)),
        )


@dataclass
class Result:
    """A counterfactual: `changes` {lever: magnitude} and the raw application values it sets (`application`), the
    probabilities before and after, and whether the re-score through the what-if path accepts it (`verified`)."""

    status: str  # "accepted already" | "found" | "none within bounds" | "unavailable"
    probability: float | None = None
    threshold: float | None = None
    changes: dict[str, float] = field(default_factory=dict)
    before: dict[str, float] = field(default_factory=dict)  # raw values of the columns the levers write
    after: dict[str, float] = field(default_factory=dict)
    new_probability: float | None = None
    verified: bool = False
    cost: float | None = None  # the MAD-scaled L1 norm of the change
    levers: tuple[str, ...] = ()
    candidates: int = 0
    elapsed_ms: float = 0.0
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None


def bounds(base: dict[str, float], scales: Scales, levers: tuple[str, ...]) -> dict[str, float]:
    """The largest magnitude of each lever for this client (0 when the lever cannot move)."""
    credit, annuity, income = base["AMT_CREDIT"], base["AMT_ANNUITY"], base["AMT_INCOME_TOTAL"]
    term = credit / annuity
    out = {}
    for name in levers:
        if name == "credit_amount":
            out[name] = max(0.0, credit - max(scales.credit_floor, 0.0))
        elif name == "term":
            out[name] = max(0.0, scales.term_cap - term)
        elif name == "coborrower_income":
            out[name] = max(0.0, scales.income_add_cap)
    _ = income
    return out


def apply(base: dict[str, float], change: dict[str, float]) -> dict[str, float]:
    """Raw AMT_CREDIT, AMT_ANNUITY, AMT_INCOME_TOTAL after a change {lever: magnitude}: annuity = credit / term."""
    credit, annuity, income = base["AMT_CREDIT"], base["AMT_ANNUITY"], base["AMT_INCOME_TOTAL"]
    term = credit / annuity
    new_credit = credit - change.get("credit_amount", 0.0)
    new_term = term + change.get("term", 0.0)
    out = {"AMT_CREDIT": new_credit, "AMT_ANNUITY": new_credit / new_term}
    out["AMT_INCOME_TOTAL"] = income + change.get("coborrower_income", 0.0)
    return out


def rounded(change: dict[str, float]) -> dict[str, float]:
    """Each magnitude rounded UP to its lever's step (a bigger change never makes a refusal more likely here; the
    result is re-checked anyway)."""
    return {
        k: math.ceil(v / LEVERS[k].round_to - 1e-9) * LEVERS[k].round_to if v > 0 else 0.0 for k, v in change.items()
    }


class Searcher:
    """The counterfactual search for one model: its bundle (compiled library, threshold, reference sample)."""

    def __init__(self, bundle, levers: tuple[str, ...] = DEFAULT_LEVERS) -> None:
        self.bundle = bundle
        self.levers = parse_levers(",".join(levers))
        reference = bundle.reference_rows()
        if reference is None:
            raise CounterfactualError(f"{bundle.model_dir}: no training reference sample, no counterfactual bounds")
        self.scales = Scales.from_reference(reference, bundle.feature_names)
        self.index = {n: i for i, n in enumerate(bundle.feature_names)}

    # --- scoring of candidate applications ---------------------------------------------------------------------
    def _dependent(self, conn, row: dict[str, Any], cols: dict[str, str], base: dict[str, float]) -> list[str]:
        """The model features that move with the levers' columns for this client: the application features of the
        client and of two changed applications (a large and a small change of every column), compared."""
        from app.data.whatif import application_features_many

        small = {c: v * 1.01 + 1.0 for c, v in base.items()}
        large = {c: v * 1.7 + 10.0 for c, v in base.items()}
        names, values = application_features_many(conn, [row, {**row, **small}, {**row, **large}], cols)
        same = (values[0] == values[1:]) | (np.isnan(values[0]) & np.isnan(values[1:]))
        return [n for j, n in enumerate(names) if n in self.index and not same[:, j].all()]

    def _score(self, conn, row, cols, x, changes: list[dict[str, float]], base, dependent: list[str]) -> np.ndarray:
        """Probabilities of the client's vector `x` with the application changed by each of `changes`."""
        from app.data.whatif import application_features_varying

        apps = [apply(base, c) for c in changes]
        values = np.array([[a[c] for c in VARYING] for a in apps], dtype=np.float64)
        F = application_features_varying(conn, row, cols, list(VARYING), values, dependent)
        X = np.repeat(x[None, :].astype(np.float32), len(apps), axis=0)
        for j, name in enumerate(dependent):
            X[:, self.index[name]] = F[:, j]
        return np.asarray(self.bundle.predict(np.ascontiguousarray(X)), dtype=np.float64)

    def cost(self, change: dict[str, float]) -> float:
        return float(sum(abs(v) / self.scales.mad[k] for k, v in change.items()))

    # --- the search ----------------------------------------------------------------------------------------------
    def search(self, conn, client_id: int, x: np.ndarray, probability: float | None = None) -> Result:
        """The counterfactual of a client whose logged vector is `x` (float32), from the application row in the
        data database `conn` (read-only use: TEMP objects in a rolled-back savepoint)."""
        from app.data.whatif import application_columns, application_row

        t0 = time.perf_counter()
        threshold = float(self.bundle.threshold)
        x = np.asarray(x, dtype=np.float32)
        p0 = float(self.bundle.predict_row(x)) if probability is None else float(probability)
        res = Result(status="unavailable", probability=p0, threshold=threshold, levers=self.levers)

        def done(r: Result) -> Result:
            r.elapsed_ms = (time.perf_counter() - t0) * 1000.0
            return r

        if not self.bundle.refuses(p0):
            res.status = "accepted already"
            return done(res)
        cols = application_columns(conn)
        row = application_row(conn, client_id, cols) if cols is not None else None
        if row is None:
            res.reason = "no application row for this client in the data"
            return done(res)
        base = {c: _number(row.get(c)) for c in ("AMT_CREDIT", "AMT_ANNUITY", "AMT_INCOME_TOTAL")}
        if any(v is None or v <= 0 for v in base.values()):
            res.reason = "credit amount, annuity or income missing in the application"
            return done(res)
        res.before = dict(base)
        dependent = self._dependent(conn, row, cols, base)  # type: ignore[arg-type]
        hi = bounds(base, self.scales, self.levers)  # type: ignore[arg-type]
        movable = [k for k in self.levers if hi[k] > 0]
        if not movable:
            res.status, res.reason = "none within bounds", "every lever is already at its plausible bound"
            return done(res)
        steps = GRID[len(movable)]
        axes = [np.linspace(0.0, hi[k], steps + 1) for k in movable]
        mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(movable))[1:]  # without 0
        grid = [dict(zip(movable, map(float, m), strict=True)) for m in mesh]
        probs = self._score(conn, row, cols, x, grid, base, dependent)
        res.candidates += len(grid)
        ok = [i for i in np.flatnonzero(~self.bundle.refuses(probs))]
        if not ok:
            res.status, res.reason = "none within bounds", "no change of the levers within the training data's range"
            return done(res)
        best = min(ok, key=lambda i: (self.cost(grid[i]), i))
        change = grid[best]
        # refinement: each lever of the best point shrunk in turn, the others kept (one batch for all levers)
        trial = [
            {**change, k: float(v)}
            for k in movable
            if change[k] > 0
            for v in np.linspace(0.0, change[k], REFINE + 1)[:-1]
        ]
        if trial:
            tp = self._score(conn, row, cols, x, trial, base, dependent)
            res.candidates += len(trial)
            good = list(np.flatnonzero(~self.bundle.refuses(tp)))
            if good:
                change = trial[min(good, key=lambda i: (self.cost(trial[i]), i))]
        # rounding (the model is not monotone: a rounded point may fall back), then the check through the what-if
        # path itself: the refined point and the cheapest accepted grid points, rounded, scored in one batch
        pool = [change] + [grid[i] for i in sorted(ok, key=lambda i: (self.cost(grid[i]), i))[:ROUNDED_POOL]]
        finals = list(
            {
                tuple(sorted(r.items())): r
                for r in ({k: v for k, v in rounded(c).items() if v > 0} for c in pool)
                if all(v <= hi[k] + LEVERS[k].round_to for k, v in r.items())
            }.values()
        )
        fp = self._score(conn, row, cols, x, finals, base, dependent)
        res.candidates += len(finals)
        for i in sorted(np.flatnonzero(~self.bundle.refuses(fp)), key=lambda i: (self.cost(finals[i]), i)):
            verified, p1 = self.verify(conn, client_id, x, base, finals[i])
            if verified:
                res.status, res.changes, res.verified, res.new_probability = "found", finals[i], True, p1
                res.after = apply(base, finals[i])
                res.cost = self.cost(finals[i])
                return done(res)
        res.status, res.reason = "none within bounds", "no rounded change was accepted on re-scoring"
        return done(res)

    def verify(self, conn, client_id: int, x: np.ndarray, base: dict, change: dict[str, float]) -> tuple[bool, float]:
        """Replay `change` through app.data.whatif.what_if (the what-if path) and score it with the same library:
        (accepted, probability)."""
        from app.data.whatif import what_if

        raw = apply(base, change)
        out = what_if(conn, client_id, {k: float(v) for k, v in raw.items()}, self.bundle.feature_names, x)
        if out is None:
            return False, float("nan")
        p = float(self.bundle.predict_row(out[0]))
        return (not self.bundle.refuses(p)), p


def sentences(result: dict[str, Any], lang: str = "fr") -> list[str]:
    """The change in words, one sentence per lever, e.g. "Borrow 12 000 less (credit 188 000 instead of 200 000)"."""
    from app.model.labels import format_value

    ch, before, after = result.get("changes") or {}, result.get("before") or {}, result.get("after") or {}
    out = []
    money = lambda v: format_value("amount", v, lang)  # noqa: E731
    if "credit_amount" in ch:
        b, a = before["AMT_CREDIT"], after["AMT_CREDIT"]
        out.append(
            f"Emprunter {money(ch['credit_amount'])} de moins (crédit de {money(a)} au lieu de {money(b)})"
            if lang == "fr"
            else f"Borrow {money(ch['credit_amount'])} less (a credit of {money(a)} instead of {money(b)})"
        )
    if "term" in ch:
        tb = before["AMT_CREDIT"] / before["AMT_ANNUITY"]
        ta = after["AMT_CREDIT"] / after["AMT_ANNUITY"]
        out.append(
            f"Rembourser sur {ta:.0f} mois au lieu de {tb:.0f} (annuité de {money(after['AMT_ANNUITY'])} au lieu de"
            f" {money(before['AMT_ANNUITY'])})"
            if lang == "fr"
            else f"Repay over {ta:.0f} months instead of {tb:.0f} (an annuity of {money(after['AMT_ANNUITY'])} instead"
            f" of {money(before['AMT_ANNUITY'])})"
        )
    if "coborrower_income" in ch:
        out.append(
            f"Ajouter un co-emprunteur dont le revenu annuel est d'au moins {money(ch['coborrower_income'])}"
            if lang == "fr"
            else f"Add a co-borrower with an annual income of at least {money(ch['coborrower_income'])}"
        )
    return out
