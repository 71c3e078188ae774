"""Key-based authentication for machine clients: ``Authorization: Api-Key <prefix>.<secret>``.

The request's user is the organization's main account (so object permissions are the
organization's), and ``request.auth`` is the ApiKey row.
"""

import hmac

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from portal.models import ApiKey, Membership


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header.startswith(self.keyword + " "):
            return None
        raw = header[len(self.keyword) + 1 :].strip()
        prefix = raw.split(".", 1)[0]
        key = (
            ApiKey.objects.select_related("organization")
            .filter(prefix=prefix, revoked_at__isnull=True)
            .first()
        )
        if key is None or not hmac.compare_digest(key.key_hash, ApiKey.hash(raw)):
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        main = (
            Membership.objects.select_related("user")
            .filter(organization=key.organization, role=Membership.Role.MAIN)
            .first()
        )
        if main is None:
            raise exceptions.AuthenticationFailed("The key's organization has no main account.")
        request.api_key_used_at = timezone.now()
        request.active_membership = main
        return main.user, key

    def authenticate_header(self, request):
        return self.keyword


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "portal.api_auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Api-Key <key>"}
