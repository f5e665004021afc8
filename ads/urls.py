from django.urls import include, path

from ads import views

app_name = "ads"

urlpatterns = [
    # Tracking: signed click redirect, impression acknowledgement, feedback, dismissal.
    path("c/<path:token>", views.click, name="click"),
    path("i/<uuid:impression_id>/ack", views.impression_ack, name="impression_ack"),
    path("i/<uuid:impression_id>/feedback", views.impression_feedback, name="impression_feedback"),
    path("i/<uuid:impression_id>/dismiss", views.impression_dismiss, name="impression_dismiss"),
    # The advertiser dashboard (ads/dashboard/urls.py).
    path("", include("ads.dashboard.urls")),
]
