"""One error hierarchy for every service, rendered as `{"error": Name, "detail": ...}`."""

from __future__ import annotations

import re
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

log = structlog.get_logger(__name__)


class AtlasError(Exception):
    """Base of every error a service answers on purpose; subclasses set `status_code`."""

    status_code: int = 500
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        self.detail = detail if detail is not None else message
        self.headers = headers

    @property
    def name(self) -> str:
        return self.code or type(self).__name__

    def to_body(self) -> dict[str, Any]:
        return {"error": self.name, "detail": self.detail}


class BadRequest(AtlasError):
    status_code = 400


class NotFound(AtlasError):
    status_code = 404


class Conflict(AtlasError):
    status_code = 409


class PayloadTooLarge(AtlasError):
    status_code = 413


class Unprocessable(AtlasError):
    status_code = 422


class ServiceUnavailable(AtlasError):
    status_code = 503


class PermanentError(Exception):
    """A failure that retrying cannot fix: the message goes straight to the DLQ."""


class ErrorBody(BaseModel):
    """The JSON body of every error answer."""

    error: str
    detail: Any = None


def error_responses(*errors: type[AtlasError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the errors an endpoint may answer."""
    return {
        e.status_code: {"model": ErrorBody, "description": e.__doc__ or e.__name__} for e in errors
    }


_UNPARSABLE_BODY = "There was an error parsing the body"


def allowed_methods(request: Request) -> list[str]:
    """Every method the app's OpenAPI document lists for the request's path (for `Allow`).

    Starlette's 405 names only the methods of the first route matching the path, while FastAPI
    registers one route per method: GET and POST on one path are two routes.
    """
    path = request.scope.get("path", "")
    matches: dict[int, set[str]] = {}
    for template, item in request.app.openapi().get("paths", {}).items():
        if re.fullmatch(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)), path):
            # /v1/documents/count is that path, not /v1/documents/{document_id}: the template
            # with the fewest parameters is the resource the path names.
            methods = matches.setdefault(template.count("{"), set())
            methods.update(m.upper() for m in item if m in _HTTP_METHODS)
    return sorted(matches[min(matches)]) if matches else []


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def install_error_handlers(app: FastAPI) -> None:
    """Render every refusal as JSON with a name and a detail, never a bare 500 page."""

    @app.exception_handler(AtlasError)
    async def _atlas_error(_: Request, exc: AtlasError) -> JSONResponse:
        return JSONResponse(exc.to_body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                "message": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        return JSONResponse({"error": "ValidationError", "detail": problems}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
            # FastAPI's answer to a body that is not JSON at all (not even UTF-8): the same
            # documented 422 as a body of the wrong shape, not an undocumented 400.
            problem = {"field": "", "message": "the body is not valid JSON", "type": "json_invalid"}
            return JSONResponse({"error": "ValidationError", "detail": [problem]}, status_code=422)
        name = {404: "NotFound", 405: "MethodNotAllowed", 401: "NotAuthenticated"}.get(
            exc.status_code, "HTTPError"
        )
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return JSONResponse(
            {"error": name, "detail": exc.detail}, status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", error=repr(exc))
        return JSONResponse(
            {"error": "InternalError", "detail": "an unexpected error occurred"}, status_code=500
        )
