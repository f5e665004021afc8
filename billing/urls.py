from django.urls import path

from billing import views

app_name = "billing"
urlpatterns = [
    path("pricing", views.pricing, name="pricing"),
    path("subscribe/<slug:slug>", views.subscribe, name="subscribe"),
    path("success", views.success, name="success"),
    path("success/status", views.success_status, name="success_status"),
    path("portal", views.portal, name="portal"),
    path("stripe/webhook", views.stripe_webhook, name="stripe_webhook"),
    path("usage/", views.usage, name="usage"),
    path("usage.csv", views.usage_csv, name="usage_csv"),
]
