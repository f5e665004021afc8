from django.urls import include, path

from ads import views, views_library

app_name = "ads"

urlpatterns = [
    # Tracking: signed click redirect, impression acknowledgement, feedback, dismissal.
    path("c/<path:token>", views.click, name="click"),
    path("i/<uuid:impression_id>/ack", views.impression_ack, name="impression_ack"),
    path("i/<uuid:impression_id>/feedback", views.impression_feedback, name="impression_feedback"),
    path("i/<uuid:impression_id>/dismiss", views.impression_dismiss, name="impression_dismiss"),
    # The public ad library (ads/views_library.py).
    path("library/", views_library.library_list, name="library"),
    path("library/<int:creative_id>/", views_library.library_entry, name="library_entry"),
    path("library.json", views_library.library_json, name="library_json"),
    path("library/<int:creative_id>.json", views_library.library_entry_json, name="library_entry_json"),
    # The advertiser dashboard (ads/dashboard/urls.py).
    path("", include("ads.dashboard.urls")),
]
