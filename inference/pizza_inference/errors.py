"""Domain errors of the inference plane and the one place they become HTTP responses.

Every error a client can cause or meet is an `InferenceError` with an HTTP status and a short
machine-readable `reason`; `install_error_handlers` turns them (and FastAPI's validation errors)
into JSON bodies `{"error": reason, "detail": message}`.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class InferenceError(Exception):
    """Base class: `status_code` and `reason` say how the API answers."""

    status_code: int = 500
    default_reason: str = "internal_error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason

    def headers(self) -> dict[str, str]:
        return {}

    def body(self) -> dict[str, Any]:
        return {"error": self.reason, "detail": self.message}


class InvalidInputError(InferenceError):
    """The request or its image cannot be used (not an image, truncated, bomb, empty...)."""

    status_code = 400
    default_reason = "invalid_input"


class PayloadTooLargeError(InferenceError):
    status_code = 413
    default_reason = "file_too_large"


class RequestTimeoutError(InferenceError):
    """The client did not send its request body in time (a slow sender): the connection is closed
    after the answer, so whatever it still sends is not read."""

    status_code = 408
    default_reason = "request_timeout"

    def headers(self) -> dict[str, str]:
        return {"Connection": "close"}


class UnsupportedMediaTypeError(InferenceError):
    status_code = 415
    default_reason = "unsupported_media_type"


class ModelNotFoundError(InferenceError):
    status_code = 404
    default_reason = "model_not_found"


class ModelNotReadyError(InferenceError):
    """The model is still loading, failed to load, or the router has no model to answer."""

    status_code = 503
    default_reason = "model_not_ready"


class InferenceFailedError(InferenceError):
    """The model raised while predicting (a server-side fault: counted as a 5xx)."""

    status_code = 500
    default_reason = "inference_failed"


class RetryLaterError(InferenceError):
    """Refused for now: the answer says when to try again (`Retry-After`, in the body too)."""

    def __init__(self, message: str, *, retry_after_s: int, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}

    def body(self) -> dict[str, Any]:
        return {**super().body(), "retry_after_seconds": self.retry_after_s}


class RateLimitedError(RetryLaterError):
    status_code = 429
    default_reason = "rate_limited"


class ServerBusyError(RetryLaterError):
    """The server's memory budget is in use (`pizza_inference.memory`): a body that does not fit
    now, or an image that waited its longest for room."""

    status_code = 503
    default_reason = "server_busy"


class UpstreamBusyError(RetryLaterError):
    """The router found no model to answer because the model server it asked last sheds load
    (429 or 503 with Retry-After): its Retry-After is passed on."""

    status_code = 503
    default_reason = "no_model_available"


class UpstreamRejectedError(InferenceError):
    """A model server behind the router rejected the request with a 4xx: passed on as is."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        super().__init__(str(body.get("detail", "rejected by the model server")))
        self.status_code = status_code
        self._body = body

    def body(self) -> dict[str, Any]:
        return self._body


def unexpected_error_body(exc: Exception) -> dict[str, Any]:
    """Logs an error no handler expected and gives the body of its 500 answer."""
    log.exception("unhandled error: %s", exc)
    return {"error": "internal_error", "detail": str(exc)}


def install_error_handlers(app: Any) -> None:
    """Registers the JSON error handlers on a FastAPI app (imports FastAPI lazily)."""
    from fastapi import Request  # noqa: PLC0415
    from fastapi.exceptions import RequestValidationError  # noqa: PLC0415
    from fastapi.responses import JSONResponse  # noqa: PLC0415
    from starlette.exceptions import HTTPException  # noqa: PLC0415

    async def on_inference_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InferenceError)
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers())

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors)
        body = {
            "error": "invalid_request",
            "detail": f"invalid request: {fields}",
            "errors": errors,
        }
        return JSONResponse(body, status_code=422)

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        reason = "not_found" if exc.status_code == 404 else "http_error"
        body = {"error": reason, "detail": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(unexpected_error_body(exc), status_code=500)

    app.add_exception_handler(InferenceError, on_inference_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
