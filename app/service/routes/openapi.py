"""The parts of the OpenAPI document that depend on the model: shared request bodies
(`#/components/requestBodies/NAME`) and the population's `features` parameter (`#/components/parameters/NAME`).

The routes decode their bodies themselves (app.service.http.decode, strict), so Litestar cannot infer these. The
applicant's features are named by the model, which the lifespan loads: these schemas are written when the
OpenAPI document is first served, from the running Service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from litestar.openapi.spec import Components, Parameter, RequestBody

from app.data.finite import FLOAT32_MAX
from app.service.http import ID_SCHEMA
from app.service.state import Service

NUMBER_OR_NULL = {"anyOf": [{"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}, {"type": "null"}]}


def applicant(svc: Service) -> dict[str, Any]:
    if svc.feature_names:
        feats = {
            "type": "object",
            "additionalProperties": False,
            "properties": {n: NUMBER_OR_NULL for n in svc.feature_names},
        }
    else:
        feats = {"type": "object", "additionalProperties": NUMBER_OR_NULL}
    return {
        "type": "object",
        "title": "Applicant",
        "description": "feature name -> number or null (missing); absent names are missing",
        "additionalProperties": False,
        "required": ["features"],
        "properties": {"features": {**feats, "title": "ApplicantFeatures"}},
    }


def batch(svc: Service) -> dict[str, Any]:
    n = svc.settings.batch_max
    return {
        "description": f"exactly one of client_ids or applicants, at most {n} items",
        "oneOf": [
            {
                "type": "object",
                "title": "BatchOfClients",
                "additionalProperties": False,
                "required": ["client_ids"],
                "properties": {"client_ids": {"type": "array", "items": ID_SCHEMA, "minItems": 1, "maxItems": n}},
            },
            {
                "type": "object",
                "title": "BatchOfApplicants",
                "additionalProperties": False,
                "required": ["applicants"],
                "properties": {"applicants": {"type": "array", "items": applicant(svc), "minItems": 1, "maxItems": n}},
            },
        ],
    }


def what_if(_: Service) -> dict[str, Any]:
    return {
        "type": "object",
        "title": "WhatIfChanges",
        "additionalProperties": False,
        "required": ["application"],
        "properties": {
            "application": {
                "type": "object",
                "title": "ApplicationChanges",
                "description": "raw application column -> new value (number, text or null)",
                "additionalProperties": {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]},
            }
        },
    }


def outcomes(_: Service) -> dict[str, Any]:
    from app.service.routes.outcomes import OUTCOMES_BODY

    return {**OUTCOMES_BODY, "title": "Outcomes"}


def rights_bodies() -> dict[str, tuple[Callable[[Service], dict[str, Any]], str]]:
    """The bodies of the client's-rights routes (app.service.routes.rights.BODIES), each titled with its name."""
    from app.service.routes.rights import BODIES

    return {name: (lambda _svc, n=name, b=body: {**b, "title": n}, text) for name, (body, text) in BODIES.items()}


def population_features(svc: Service) -> dict[str, Any]:
    items: dict[str, Any] = {"type": "string"}
    if svc.feature_names:
        items["enum"] = list(svc.feature_names)
    return {
        "name": "features",
        "in": "query",
        "required": False,
        "schema": {"type": "array", "items": items, "minItems": 1, "maxItems": 20},
        "style": "form",
        "explode": False,
        "description": "comma-separated model feature names (at most 20)",
    }


class _FromService:
    """A spec object written from the Service when the document is rendered (after the lifespan started)."""

    svc: Service | None
    write: Callable[[Service], dict[str, Any]] | None

    def __deepcopy__(self, memo: dict[int, Any]) -> _FromService:
        return self  # holds the live Service (Litestar deep-copies the configured components)

    def to_schema(self) -> dict[str, Any]:
        assert self.svc is not None and self.write is not None
        return self.write(self.svc)


@dataclass
class ServiceBody(_FromService, RequestBody):
    svc: Service | None = field(default=None, repr=False)
    write: Callable[[Service], dict[str, Any]] | None = field(default=None, repr=False)


@dataclass
class ServiceParameter(_FromService, Parameter):
    svc: Service | None = field(default=None, repr=False)
    write: Callable[[Service], dict[str, Any]] | None = field(default=None, repr=False)


def _json_body(schema_of: Callable[[Service], dict[str, Any]], text: str) -> Callable[[Service], dict[str, Any]]:
    return lambda svc: {
        "description": text,
        "required": True,
        "content": {"application/json": {"schema": schema_of(svc)}},
    }


def components(svc: Service) -> Components:
    """The model-dependent components (named in `app.service.http.operation(body=..., param_refs=...)`)."""
    bodies = {
        "Applicant": (applicant, "an applicant's features (POST /score, POST /explain)"),
        "Batch": (batch, "known clients or applicants to score (POST /score/batch)"),
        "WhatIf": (what_if, "raw application values to change (POST /clients/{client_id}/what-if)"),
        "Outcomes": (outcomes, "observed outcomes of clients (POST /outcomes)"),
        **rights_bodies(),
    }
    return Components(
        request_bodies={
            name: ServiceBody(content={}, svc=svc, write=_json_body(fn, text)) for name, (fn, text) in bodies.items()
        },
        parameters={
            "PopulationFeatures": ServiceParameter(
                name="features", param_in="query", svc=svc, write=population_features
            )
        },
    )
