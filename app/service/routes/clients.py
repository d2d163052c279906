"""The clients' data: id search, readable columns, raw application columns, model features (officer)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter

from app.data.finite import display_value
from app.service import inputs
from app.service import schemas as s
from app.service.http import OFFICER, SECURITY, ApiError, errors, json_value, operation, parse_id
from app.service.state import Service
from app.vectors import vector

CLIENT_ERRORS = errors(400, 401, 403, 404, 503)
CLIENT_OP = operation(path_ids=("client_id",))


class ClientsController(Controller):
    path = "/clients"
    tags = ["clients"]
    security = SECURITY

    @get("/", sync_to_thread=False, opt=OFFICER, responses=errors(400, 401, 403, 503))
    def search_clients(
        self,
        svc: Service,
        prefix: Annotated[str, Parameter(pattern=r"^[0-9]{0,16}$", description="leading digits of a client id")] = "",
        limit: Annotated[int, Parameter(ge=1, le=100)] = 10,
    ) -> s.ClientSearch:
        """Search suggestions: client ids starting with `prefix`, shortest (closest) first."""
        if prefix and prefix.startswith("0"):
            return s.ClientSearch(client_ids=[])
        conn = svc.conn(model=False)
        ids: list[int] = []
        if not prefix:
            ids = [r[0] for r in conn.execute("SELECT client_id FROM clients ORDER BY client_id LIMIT ?", (limit,))]
            return s.ClientSearch(client_ids=ids)
        base = int(prefix)
        for k in range(0, 17 - len(prefix)):
            lo, hi = base * 10**k, (base + 1) * 10**k - 1
            if lo > s.MAX_ID:
                break
            ids.extend(
                r[0]
                for r in conn.execute(
                    "SELECT client_id FROM clients WHERE client_id BETWEEN ? AND ? ORDER BY client_id LIMIT ?",
                    (lo, min(hi, s.MAX_ID), limit - len(ids)),
                )
            )
            if len(ids) >= limit:
                break
        return s.ClientSearch(client_ids=ids[:limit])

    @get("/{client_id:str}", sync_to_thread=False, opt=OFFICER, responses=CLIENT_ERRORS, operation_class=CLIENT_OP)
    def get_client(self, svc: Service, client_id: str) -> s.Client:
        """The client's readable columns (table `clients`)."""
        cid = parse_id(client_id)
        cur = svc.conn(model=False).execute("SELECT * FROM clients WHERE client_id = ?", (cid,))
        row = cur.fetchone()
        if row is None:
            raise ApiError(404, "unknown client", {"client_id": cid})
        names = [d[0] for d in cur.getdescription()]
        fields = {n: json_value(v) for n, v in zip(names, row, strict=True) if n != "client_id"}
        return s.Client(client_id=cid, fields=fields)

    @get("/{client_id:str}/application", sync_to_thread=True, opt=OFFICER, responses=CLIENT_ERRORS,
         operation_class=CLIENT_OP)  # fmt: skip
    def get_application(self, svc: Service, client_id: str) -> s.ClientApplication:
        """The client's raw application columns (application_train or application_test), as imported.
        404 for an unknown client or for a database imported with `credit ingest-csv`."""
        cid = parse_id(client_id)
        fields = {k: json_value(v) for k, v in inputs.application(svc, cid).items()}
        return s.ClientApplication(client_id=cid, application=fields)

    @get("/{client_id:str}/features", sync_to_thread=False, opt=OFFICER, responses=CLIENT_ERRORS,
         operation_class=CLIENT_OP)  # fmt: skip
    def get_features(self, svc: Service, client_id: str) -> s.ClientFeatures:
        """The client's model features (null = missing; finite, app.data.finite): the starting point of a what-if."""
        cid = parse_id(client_id)
        svc.require_model()
        rows = svc.score_query("SELECT client_id, x FROM features WHERE client_id = ?", (cid,))
        if not rows:
            raise ApiError(404, "unknown client", {"client_id": cid})
        x = vector(rows[0][1])
        feats = {n: display_value(v) for n, v in zip(svc.feature_names, x.tolist(), strict=True)}
        return s.ClientFeatures(client_id=cid, features=feats)
