from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from assistant import admin_live
from config import health, metrics

admin.site.site_header = "Lhama administration"
admin.site.site_title = "Lhama admin"

urlpatterns = [
    path("favicon.ico", health.favicon),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path(f"{settings.ADMIN_URL}live/", admin.site.admin_view(admin_live.live_runs), name="admin-live-runs"),
    path(settings.ADMIN_URL, admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("account/", include("accounts.urls")),
    path("account/api-keys/", include("assistant.api.account_urls")),
    path("billing/", include("billing.urls")),
    path("ads/", include("ads.urls")),
    path("api/v1/", include("assistant.api.urls")),
    path("", include("assistant.urls")),
]
