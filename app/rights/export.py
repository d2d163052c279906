"""A client's file as JSON (`credit rights-export`, GET /clients/{id}/rights-export): everything the operational
store holds about their decisions (app.rights.records.client_file), the logged values named with the features of
the model that served each decision when its manifest is still in the serving folder. The export is recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apsw

from app.rights import records
from app.rights.records import Actor


def _feature_names(serving: Path | str, model_ids: set[str]) -> dict[str, list[str]]:
    """{model id: feature names} for the models found among the serving folder's bundles (manifests only)."""
    from app.scoring import layout
    from app.scoring.bundle import ModelError, read_manifest

    serving = Path(serving)
    folders = [serving] + (sorted((serving / layout.BUNDLES).iterdir()) if (serving / layout.BUNDLES).is_dir() else [])
    out: dict[str, list[str]] = {}
    for folder in folders:
        try:
            manifest = read_manifest(folder)[0]
        except ModelError:
            continue
        if manifest.model_id in model_ids:
            out[manifest.model_id] = list(manifest.features)
    return out


def export_client(store: apsw.Connection, client_id: int, actor: Actor, serving: Path | str) -> dict[str, Any]:
    """The client's file; its export is recorded first (so the file lists it too)."""
    records.record_event(
        store, actor, "export", {"request_id": None, "client_id": int(client_id)}, "client's file exported"
    )
    doc = records.client_file(store, client_id)
    names = _feature_names(serving, {d["model_id"] for d in doc["decisions"]})
    for d in doc["decisions"]:
        known = names.get(d["model_id"])
        if known is not None and isinstance(d["inputs"], list) and len(known) == len(d["inputs"]):
            d["inputs"] = dict(zip(known, d["inputs"], strict=True))
    return doc
