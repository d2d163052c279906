"""The HTTP routes: one Litestar Controller per resource. Each receives the Service as the `svc` dependency."""

from __future__ import annotations

from app.service.routes.clients import ClientsController
from app.service.routes.explanations import ExplanationsController
from app.service.routes.health import HealthController
from app.service.routes.model import ModelController
from app.service.routes.monitoring import MonitoringController
from app.service.routes.population import PopulationController
from app.service.routes.scoring import ScoringController

CONTROLLERS = [
    HealthController,
    ClientsController,
    ScoringController,
    ModelController,
    MonitoringController,
    PopulationController,
    ExplanationsController,
]

__all__ = ["CONTROLLERS"]
