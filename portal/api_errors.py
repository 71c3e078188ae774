"""One error body everywhere in the API: ``{"code": ..., "message": ..., "field": ...}``."""

import logging

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from portal.errors import DomainError

log = logging.getLogger(__name__)


def _first_error(detail, prefix=None):
    """Walk DRF's nested error detail down to the first (field, ErrorDetail)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            field = None if key in ("non_field_errors", "detail") else (f"{prefix}.{key}" if prefix else key)
            return _first_error(value, field if field is not None else prefix)
    if isinstance(detail, list) and detail:
        return _first_error(detail[0], prefix)
    return prefix, detail


def error_body(code: str, message: str, field: str | None = None) -> dict:
    return {"code": code, "message": str(message), "field": field}


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(exc.as_body(), status=exc.status)
    if isinstance(exc, Http404):
        return Response(error_body("not_found", "Not found."), status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        field = None
        if hasattr(exc, "error_dict"):
            field = next(iter(exc.error_dict))
        return Response(error_body("invalid", "; ".join(exc.messages), field), status=400)
    if isinstance(exc, IntegrityError):
        # The database is the backstop for rules; the service should have caught it first.
        log.warning("database refused a write: %s", exc)
        return Response(error_body("conflict", "The request conflicts with existing data."), status=409)
    if isinstance(exc, DataError):
        # A value the column cannot hold (too long, NUL byte...) is bad input, not a conflict.
        log.warning("database refused a value: %s", exc)
        return Response(error_body("invalid", "A value is out of range or malformed."), status=400)
    if isinstance(exc, exceptions.ValidationError):
        field, detail = _first_error(exc.detail)
        code = getattr(detail, "code", "invalid") or "invalid"
        return Response(error_body(code, str(detail), field), status=exc.status_code)
    if isinstance(exc, exceptions.APIException):
        detail = exc.detail
        if isinstance(detail, (dict, list)):
            _, detail = _first_error(detail)
        code = getattr(detail, "code", None) or exc.default_code
        headers = {}
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            headers["WWW-Authenticate"] = 'Api-Key realm="api"'
        return Response(error_body(code, str(detail)), status=exc.status_code, headers=headers)
    return None
