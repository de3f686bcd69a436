"""The HTTP API.

    uvicorn app.main:app --host 0.0.0.0 --port 8000

``create_app()`` builds the application from ``Settings`` (the environment by
default); ``app`` is the one uvicorn serves. The model is loaded from
MODEL_PATH at start-up (a missing or bad file stops the start-up: the service
never runs without its model) and nothing is downloaded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.model import FEATURES, LoadedModel, load_model
from app.storage import (
    PostgresStore,
    Store,
    StoredPrediction,
    StoreUnavailableError,
    UnconfiguredStore,
)

log = logging.getLogger(__name__)

# One measurement in centimetres: a finite number in a plausible range.
Feature = Annotated[float, Field(ge=0.0, le=100.0, allow_inf_nan=False)]


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    features: Annotated[
        list[Feature],
        Field(
            min_length=len(FEATURES),
            max_length=len(FEATURES),
            description="sepal length, sepal width, petal length, petal width (cm)",
            examples=[[5.1, 3.5, 1.4, 0.2]],
        ),
    ]


class PredictResponse(BaseModel):
    id: int
    label: str
    scores: list[float] = Field(description="one probability per entry of `labels`")
    labels: list[str]


class PredictionRecord(BaseModel):
    id: int
    features: list[float]
    label: str
    scores: list[float]
    model: str = Field(description="sha256 of the model file that made the prediction")
    created_at: datetime

    @classmethod
    def of(cls, row: StoredPrediction) -> PredictionRecord:
        return cls(
            id=row.id,
            features=row.features,
            label=row.label,
            scores=row.scores,
            model=row.model,
            created_at=row.created_at,
        )


class Health(BaseModel):
    status: str = Field(description='"ok", or "degraded" when the database is unreachable')
    model: str = Field(description="first 12 hex digits of the model file's sha256")
    database: str = Field(description='"ok" or "unavailable"')


def _json_safe(value: object) -> object:
    """Replace NaN and infinities (which JSON cannot carry) by their names."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def get_model(request: Request) -> LoadedModel:
    return request.app.state.model


def get_store(request: Request) -> Store:
    """The prediction store; tests override this dependency."""
    return request.app.state.store


ModelDep = Annotated[LoadedModel, Depends(get_model)]
StoreDep = Annotated[Store, Depends(get_store)]


def _configure_logging() -> None:
    """Show this package's INFO lines next to uvicorn's, unless logging is set up."""
    logger = logging.getLogger("app")
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)-9s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    _configure_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.model = await run_in_threadpool(load_model, settings.model_path)
        log.info("model %s loaded from %s", app.state.model.version, settings.model_path)
        store: Store
        if settings.database_url:
            if settings.migrate_on_start:
                from app.migrate import migrate

                applied = await run_in_threadpool(
                    migrate,
                    settings.database_url,
                    settings.migrations_dir,
                    settings.migrate_wait_seconds,
                )
                log.info("migrations applied at start-up: %s", [str(m) for m in applied])
            postgres = PostgresStore(settings.database_url)
            postgres.open()
            store = postgres
        else:
            log.warning("DATABASE_URL is not set: predictions cannot be stored")
            postgres = None
            store = UnconfiguredStore()
        app.state.store = store
        try:
            yield
        finally:
            if postgres is not None:
                postgres.close()

    app = FastAPI(title="cargohold demo backend", version="0.1.0", lifespan=lifespan)

    @app.exception_handler(StoreUnavailableError)
    async def store_unavailable(_request: Request, exc: StoreUnavailableError) -> JSONResponse:
        log.warning("store unavailable: %s", exc)
        return JSONResponse({"detail": "database unavailable"}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default handler echoes the input back and fails (500) when it
        # holds NaN or Infinity, which Python's JSON parser accepts.
        detail = _json_safe(jsonable_encoder(exc.errors()))
        return JSONResponse({"detail": detail}, status_code=422)

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    def health(model: ModelDep, store: StoreDep) -> JSONResponse:
        """200 when the model is loaded and the database answers; 503 otherwise."""
        db_ok = store.ping()
        body = Health(
            status="ok" if db_ok else "degraded",
            model=model.version,
            database="ok" if db_ok else "unavailable",
        )
        return JSONResponse(body.model_dump(), status_code=200 if db_ok else 503)

    @app.post("/predict", response_model=PredictResponse)
    def predict(request: PredictRequest, model: ModelDep, store: StoreDep) -> PredictResponse:
        prediction = model.predict(request.features)
        row = store.add(request.features, prediction.label, prediction.scores, model.sha256)
        return PredictResponse(
            id=row.id, label=prediction.label, scores=prediction.scores, labels=list(model.labels)
        )

    @app.get("/predictions", response_model=list[PredictionRecord])
    def predictions(
        store: StoreDep, limit: Annotated[int, Query(ge=1, le=100)] = 10
    ) -> list[PredictionRecord]:
        """The most recent stored predictions, newest first."""
        return [PredictionRecord.of(r) for r in store.recent(limit)]

    return app


app = create_app()
