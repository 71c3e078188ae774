"""403/404/500 and a refused CSRF token: the API gets the one error body, pages a page of the
portal (its layout, its language, a way back) rather than Django's bare English default."""

from django.http import JsonResponse
from django.shortcuts import render

from portal.middleware import error_back_url


def permission_denied(request, exception=None):
    # ``PermissionDenied("...")`` carries a message already in the reader's language (a page
    # refusing a sub-account says who may act); a bare one says only that it is refused.
    message = str(exception) if exception is not None and exception.args else ""
    if request.path.startswith("/api/"):
        body = {"code": "permission_denied", "message": message or "Permission denied.", "field": None}
        return JsonResponse(body, status=403)
    context = {"message": message, "back_url": error_back_url(request)}
    return render(request, "403.html", context, status=403)


def csrf_failure(request, reason=""):
    """A form posted with a missing or stale token: most often a page left open past its
    session, or signed out in another tab. Say so and offer the way back to reload it."""
    if request.path.startswith("/api/"):
        body = {"code": "csrf_failed", "message": "CSRF check failed; reload and retry.", "field": None}
        return JsonResponse(body, status=403)
    return render(request, "403_csrf.html", {"back_url": error_back_url(request)}, status=403)


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "message": "Not found.", "field": None}, status=404)
    return render(request, "404.html", status=404)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "server_error", "message": "Internal error.", "field": None}, status=500)
    return render(request, "500.html", status=500)
