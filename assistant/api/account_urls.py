"""The account page's API keys (/account/api-keys/)."""

from django.urls import path

from assistant.api import views

app_name = "apikeys"
urlpatterns = [
    path("", views.api_keys, name="list"),
    path("<int:key_id>/revoke", views.api_key_revoke, name="revoke"),
]
