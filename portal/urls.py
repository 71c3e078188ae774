from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csp import csp_override
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from portal import views

# Swagger UI sets inline styles from its own (self-hosted) script; only this page allows them.
swagger_ui = csp_override({**settings.SECURE_CSP, "style-src": [CSP.SELF, CSP.UNSAFE_INLINE]})(
    SpectacularSwaggerSplitView.as_view(url_name="schema")
)

# The hot machine routes (the gate, the access check) come first: URL resolution tries the
# patterns in order, and every pattern tried before a match costs on each call.
api_v1 = [
    path("billing/", include("billing.api_urls")),
    path("authorization/", include("authorization.api_urls")),
    path("portal/", include("portal.api_urls")),
    path("gifts/", include("gifts.api_urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("", views.dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("notifications/", views.notification_list, name="notifications"),
    path("organizations/switch/", views.switch_organization, name="switch-organization"),
    path("api-keys/", views.api_key_create, name="api-key-create"),
    path("api-keys/<int:key_id>/revoke/", views.api_key_revoke, name="api-key-revoke"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("i18n/setlang/", views.set_language, name="set_language"),
    path("admin/", admin.site.urls),
    path("billing/", include("billing.urls")),
    path("authorization/", include("authorization.urls")),
    path("gifts/", include("gifts.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", swagger_ui, name="swagger-ui"),
]

handler403 = "portal.views_errors.permission_denied"
handler404 = "portal.views_errors.not_found"
handler500 = "portal.views_errors.server_error"

admin.site.site_header = _("开放平台运营后台")
admin.site.site_title = _("开放平台运营后台")
