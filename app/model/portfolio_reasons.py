"""Reason codes for a whole portfolio: every (refused) client's main reasons, written to CSV or Parquet.

The clients and their decisions come from the extension's `scores` table (the batch engine, the same
numbers as `score()`), their contributions from the library's batch TreeSHAP (`credit_shap_batch`: the
per-leaf tables of app/model/codegen_shap_tables.py, the numbers of `shap_values()` and of one client's
explanation), EXPLAIN_BLOCK clients at a time. A reason is what `Explainer.explain` calls one: a feature
with a positive contribution, by decreasing contribution, at most `top` per client, told as the same
sentence. One output row per (client, reason); a client with no positive contribution has one row with
rank 0 and no feature, so that every selected client appears.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.files import atomic_write_bytes
from app.model.explain import Explainer, ExplainError, _check_feature_names
from app.model.labels import label, reason_sentence

EXPLAIN_BLOCK = 2048  # clients per batch call: the matrix and its contributions stay a few MB
COLUMNS = (
    "client_id",
    "probability",
    "decision",
    "rank",
    "feature",
    "label",
    "value",
    "typical",
    "shap",
    "sentence",
)
FORMATS = ("csv", "parquet")


@dataclass(frozen=True)
class ReasonsSummary:
    clients: int
    rows: int
    path: Path


def _blocks(conn, n_features: int, refused_only: bool, block: int) -> Iterator[tuple[list, np.ndarray]]:
    where = " WHERE s.decision = 'refuse'" if refused_only else ""
    cur = conn.execute(
        "SELECT s.client_id, s.probability, s.decision, f.x FROM scores s JOIN main.features f USING (client_id)"
        f"{where} ORDER BY s.client_id"
    )
    heads: list = []
    xs: list[bytes] = []
    for cid, p, decision, blob in cur:
        if not isinstance(blob, bytes) or len(blob) != 4 * n_features:
            raise ExplainError(f"features.x of client {cid} is not a BLOB of {n_features} float32 features")
        heads.append((int(cid), float(p), decision))
        xs.append(blob)
        if len(heads) == block:
            yield heads, np.frombuffer(b"".join(xs), dtype="<f4").reshape(len(heads), n_features)
            heads, xs = [], []
    if heads:
        yield heads, np.frombuffer(b"".join(xs), dtype="<f4").reshape(len(heads), n_features)


def reason_rows(
    conn, explainer: Explainer, *, refused_only: bool = True, top: int = 4, lang: str = "fr",
    block: int = EXPLAIN_BLOCK,
) -> Iterator[tuple]:  # fmt: skip
    """(client_id, probability, decision, rank, feature, label, value, typical, shap, sentence) per reason."""
    if lang not in ("fr", "en"):
        raise ExplainError(f"lang must be fr or en, not {lang!r}")
    _check_feature_names(conn, explainer)
    names = explainer.feature_names
    for heads, X in _blocks(conn, explainer.n_features, refused_only, block):
        shap = explainer.shap_values(np.ascontiguousarray(X, dtype=np.float32))[:, :-1]
        # by decreasing contribution (ties: manifest order, as explain()'s stable sort of |shap| does)
        order = np.argsort(-shap, axis=1, kind="stable")[:, : max(top, 0)]
        for r, (cid, p, decision) in enumerate(heads):
            rank = 0
            for i in order[r]:
                s = float(shap[r, i])
                if s <= 0:
                    break
                rank += 1
                x = float(X[r, i])
                value = None if np.isnan(x) else x
                typical = explainer.typical_of(int(i))
                typical = None if np.isnan(typical) else typical
                sentence = reason_sentence(names[i], value, typical, lang, unit=explainer.unit_of(int(i)))
                yield (cid, p, decision, rank, names[i], label(names[i], lang), value, typical, s, sentence)
            if rank == 0:
                yield (cid, p, decision, 0, None, None, None, None, None, None)


def write_reasons(
    conn, explainer: Explainer, out: Path, *, refused_only: bool = True, top: int = 4, lang: str = "fr",
    fmt: str | None = None,
) -> ReasonsSummary:  # fmt: skip
    """Write reason_rows() to `out` (CSV or Parquet, by `fmt` or the file's suffix), replacing it atomically."""
    fmt = fmt or out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ExplainError(f"{out}: unknown output format {fmt!r}; name the file .csv or .parquet (or give --format)")
    rows = list(reason_rows(conn, explainer, refused_only=refused_only, top=top, lang=lang))
    clients = len({r[0] for r in rows})
    if fmt == "csv":
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows(("" if v is None else repr(v) if isinstance(v, float) else v for v in r) for r in rows)
        atomic_write_bytes(out, buf.getvalue().encode("utf-8"))
    else:
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = list(zip(*rows, strict=True)) if rows else [[] for _ in COLUMNS]
        types = [pa.int64(), pa.float64(), pa.string(), pa.int32(), pa.string(), pa.string()]
        types += [pa.float64(), pa.float64(), pa.float64(), pa.string()]
        table = pa.table({n: pa.array(list(c), type=t) for n, c, t in zip(COLUMNS, cols, types, strict=True)})
        sink = io.BytesIO()
        pq.write_table(table, sink)
        atomic_write_bytes(out, sink.getvalue())
    return ReasonsSummary(clients=clients, rows=len(rows), path=out)
