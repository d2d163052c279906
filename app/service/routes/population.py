"""GET /population (officer): a fixed random sample of clients, for the dashboard's comparison charts."""

from __future__ import annotations

import json
from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter

from app.data.finite import display_value
from app.service import schemas as s
from app.service.http import OFFICER, SECURITY, ApiError, errors, finite, operation
from app.service.state import Service, population_sample
from app.vectors import vector


class PopulationController(Controller):
    tags = ["clients"]
    security = SECURITY

    @get("/population", sync_to_thread=True, opt=OFFICER, responses=errors(400, 401, 403, 503),
         operation_class=operation(param_refs={"features": "PopulationFeatures"}))  # fmt: skip
    def population(
        self,
        svc: Service,
        features: Annotated[list[str] | None, Parameter(description="comma-separated model feature names")] = None,
        limit: Annotated[int, Parameter(ge=1, le=5000)] = 500,
    ) -> s.Population:
        """A fixed random sample of clients: values of the requested features, probability and decision.

        For the dashboard's comparison charts. Not written to the prediction log: it describes the portfolio,
        it is not a decision served about one client. `features=A,B` as documented; `features=A&features=B`
        (what generated clients send for an array) means the same."""
        model = svc.require_model()
        names = [n for given in features for n in given.split(",")] if features is not None else []
        unknown = [n for n in names if n not in svc.index]
        if unknown:
            raise ApiError(400, "unknown feature names", {"unknown_features": unknown[:50]})
        if len(names) > 20:
            raise ApiError(400, "at most 20 features")
        conn = svc.conn()
        sample = population_sample(svc, conn)[:limit]
        cols = [svc.index[n] for n in names]
        rows = []
        for cid, p, xb in svc.score_query(  # rows whose length does not match the model are left out
            "SELECT client_id, score_features(x), x FROM features WHERE client_id IN (SELECT value FROM json_each(?))"
            " AND length(x) = ? ORDER BY client_id",
            (json.dumps([int(i) for i in sample]), 4 * len(svc.feature_names)),
        ):
            x = vector(xb)
            vals = [display_value(float(x[c])) for c in cols]
            p = finite(p)
            rows.append(s.PopulationRow(client_id=cid, values=vals, probability=p, decision=svc.decide(p)))
        return s.Population(features=names, rows=rows, threshold=model.threshold, model_id=model.model_id)
