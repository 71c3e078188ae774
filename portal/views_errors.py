"""404/500 that answer the API with the one error body and pages with a page."""

from django.http import JsonResponse
from django.shortcuts import render


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "message": "Not found.", "field": None}, status=404)
    return render(request, "404.html", status=404)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "server_error", "message": "Internal error.", "field": None}, status=500)
    return render(request, "500.html", status=500)
