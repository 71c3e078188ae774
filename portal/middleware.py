from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.shortcuts import render
from django.urls import Resolver404, resolve, reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme

from portal.errors import DomainError
from portal.selectors import membership_active_for_user

ACTIVE_ORG_SESSION_KEY = "active_org_id"


class ActiveMembershipMiddleware:
    """``request.active_membership``: the membership the signed-in user acts through.

    A user in several organizations picks one (session); every selector is scoped by it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Resolved eagerly: a lazy proxy of None would not compare ``is None``. Costs nothing
        # for cookie-less machine calls (the hot paths), one query for signed-in pages.
        if not hasattr(request, "active_membership"):
            request.active_membership = self._resolve(request)
        return self.get_response(request)

    @staticmethod
    def _resolve(request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return membership_active_for_user(user=user, org_id=request.session.get(ACTIVE_ORG_SESSION_KEY))


class DomainErrorMiddleware:
    """Pages: a refused operation shows the rule and message instead of a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DomainError) and not request.path.startswith("/api/"):
            return render(
                request,
                "portal/error.html",
                {"error": exception, "back_url": error_back_url(request)},
                status=exception.status,
            )
        return None


def error_back_url(request) -> str:
    """Where the error page's "Back" goes: the page the user came from when it is one of ours
    (and not the refused URL itself), else the nearest page above the refused URL
    (``/billing/wallet/ledger.csv`` → ``/billing/wallet/``), else the dashboard."""
    referer = request.META.get("HTTP_REFERER", "")
    if (
        referer
        and url_has_allowed_host_and_scheme(
            referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        and referer != request.build_absolute_uri()
    ):
        return referer
    parts = request.path.rstrip("/").split("/")
    while len(parts) > 1:
        parts.pop()
        candidate = "/".join(parts) + "/"
        if candidate == "/":
            break
        try:
            match = resolve(candidate)
        except Resolver404:
            continue
        if not match.kwargs:
            return candidate
    return reverse("dashboard")


class ChosenLanguageMiddleware(LocaleMiddleware):
    """zh-hans for everyone unless the user picked another language with the switch.

    Django's LocaleMiddleware would follow the browser's Accept-Language; the portal is
    zh-hans first (DOMAIN.md), so only a choice made with the switch counts: the signed-in
    user's stored language (``User.language``, read on every request, so a change made on
    another browser or in admin applies at once), else the switch's cookie. Placed after
    AuthenticationMiddleware; a request without a session (API keys, the gate) loads no user.
    """

    def process_request(self, request):
        user = getattr(request, "user", None)
        stored = user.language if user is not None and user.is_authenticated else ""
        code = stored or request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        if code not in dict(settings.LANGUAGES) or not translation.check_for_language(code):
            code = settings.LANGUAGE_CODE
        translation.activate(code)
        request.LANGUAGE_CODE = translation.get_language()
