"""The prior system's endpoints: /classify, /predict/*, /health, /status, /ab-test/*."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from pizza_inference.api.schemas import (
    ABTestStatusResponse,
    ClassifyResponse,
    CompareResponse,
    ErrorResponse,
    HealthResponse,
    StatusResponse,
    now_iso,
)
from pizza_inference.api.uploads import keep_raw_body, read_upload
from pizza_inference.service import (
    ONE_MODEL_AB_STATUS,
    ABTesting,
    Comparison,
    InferenceService,
    Target,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 413, 415, 422, 429, 500, 503)
}

ImageFile = Annotated[UploadFile, File(description="JPEG or PNG image, at most 10 MB")]
ReturnProbabilities = Annotated[bool, Form(description="include the per-class probabilities")]
ABGroup = Annotated[
    str | None,
    Form(pattern="^[ABab]$", description='"A" asks for the primary model, "B" for the fallback'),
]


def service_of(request: Request) -> InferenceService:
    service: InferenceService = request.app.state.service
    return service


class RawBodyRoute(APIRoute):
    """A route that, when the service forwards raw bodies (the router), reads a multipart request's
    body itself before FastAPI parses the form, and keeps it for `read_upload` (other requests,
    and every request to a model server, go straight to FastAPI's handler)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def keeping_raw_body(request: Request) -> Response:
            if getattr(service_of(request), "forwards_raw_body", False):
                request = await keep_raw_body(request)
            return await handler(request)

        return keeping_raw_body


async def _classify(
    request: Request,
    file: UploadFile,
    target: Target,
    return_probabilities: bool,
    ab_test_group: str | None = None,
) -> ClassifyResponse:
    """The one path of every prior classify endpoint: read, classify, shape the response."""
    upload = await read_upload(file, request)
    prediction = await service_of(request).classify(
        upload, target=target, ab_test_group=ab_test_group
    )
    return ClassifyResponse.from_prediction(prediction, return_probabilities=return_probabilities)


def build_prior_router() -> APIRouter:
    router = APIRouter(tags=["pizza"], route_class=RawBodyRoute)

    @router.post("/classify", response_model=ClassifyResponse, responses=ERRORS)
    async def classify(
        request: Request,
        file: ImageFile,
        use_spatial: Annotated[bool, Form(description="prefer the primary (spatial) model")] = True,
        return_probabilities: ReturnProbabilities = True,
        ab_test_group: ABGroup = None,
    ) -> ClassifyResponse:
        """Classifies a pizza image (the router: primary, with per-request fallback)."""
        group = ab_test_group.upper() if ab_test_group else None
        target = Target.AUTO if use_spatial else Target.FALLBACK
        return await _classify(request, file, target, return_probabilities, group)

    @router.post("/predict/spatial", response_model=ClassifyResponse, responses=ERRORS)
    async def predict_spatial(
        request: Request, file: ImageFile, return_probabilities: ReturnProbabilities = True
    ) -> ClassifyResponse:
        """Asks for the primary model (the router still falls back per request and says so)."""
        return await _classify(request, file, Target.PRIMARY, return_probabilities)

    @router.post("/predict/standard", response_model=ClassifyResponse, responses=ERRORS)
    async def predict_standard(
        request: Request, file: ImageFile, return_probabilities: ReturnProbabilities = True
    ) -> ClassifyResponse:
        """Asks for the fallback (standard CNN) model."""
        return await _classify(request, file, Target.FALLBACK, return_probabilities)

    @router.get(
        "/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}}
    )
    async def health(request: Request) -> JSONResponse:
        """healthy (200) only when a model can answer; loading/unhealthy otherwise (503)."""
        health = await service_of(request).health()
        body = HealthResponse(
            status=health.status,
            role=health.role,
            models=health.models,
            mode=health.mode,
            timestamp=now_iso(),
        )
        return JSONResponse(body.model_dump(), status_code=200 if health.ready else 503)

    @router.get("/status", response_model=StatusResponse)
    async def status(request: Request) -> StatusResponse:
        return StatusResponse(**asdict(await service_of(request).status()), timestamp=now_iso())

    @router.get("/ab-test/status", response_model=ABTestStatusResponse)
    async def ab_test_status(request: Request) -> ABTestStatusResponse:
        service = service_of(request)
        ab = service.ab_status() if isinstance(service, ABTesting) else ONE_MODEL_AB_STATUS
        return ABTestStatusResponse(**asdict(ab))

    @router.post("/ab-test/compare", response_model=CompareResponse, responses=ERRORS)
    async def ab_test_compare(request: Request, file: ImageFile) -> CompareResponse:
        """Classifies the image with every model behind this server and says whether they agree."""
        upload = await read_upload(file, request)
        service = service_of(request)
        if isinstance(service, ABTesting):
            result = await service.compare(upload)
        else:  # one model: its answer, nothing to agree with
            prediction = await service.classify(upload, target=Target.AUTO, ab_test_group=None)
            result = Comparison(results=[prediction])
        return CompareResponse(
            results=[ClassifyResponse.from_prediction(p) for p in result.results],
            errors=result.errors,
            agreement=result.agreement,
            timestamp=now_iso(),
        )

    return router
