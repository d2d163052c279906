"""The HTTP routes: one Litestar Controller per resource. Each receives the Service as the `svc` dependency."""

from __future__ import annotations

from app.routes.clients import ClientsController
from app.routes.explanations import ExplanationsController
from app.routes.health import HealthController
from app.routes.model import ModelController
from app.routes.monitoring import MonitoringController
from app.routes.population import PopulationController
from app.routes.scoring import ScoringController

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
