from django.urls import include, path

app_name = "ads"

urlpatterns = [
    # The advertiser dashboard (ads/dashboard/urls.py).
    path("", include("ads.dashboard.urls")),
]
