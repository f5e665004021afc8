from django.urls import path  # noqa: F401

# The advertiser dashboard routes (owned by the dashboard work); included by ads/urls.py.
urlpatterns: list = []
