"""The advertiser dashboard, under /ads/ (included by ads/urls.py)."""

from django.urls import path

from ads.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.landing, name="landing"),
    path("start/", views.org_create, name="org_create"),
    path("account/", views.overview, name="overview"),
    path("account/edit/", views.org_edit, name="org_edit"),
    path("account/switch/<int:advertiser_id>/", views.org_switch, name="org_switch"),
    path("account/topup/", views.topup, name="topup"),
    path("account/members/", views.member_invite, name="member_invite"),
    path("campaigns/", views.campaign_list, name="campaigns"),
    path("campaigns/new/", views.campaign_create, name="campaign_create"),
    path("campaigns/<int:pk>/", views.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:pk>/edit/", views.campaign_edit, name="campaign_edit"),
    path("campaigns/<int:pk>/pause/", views.campaign_pause, name="campaign_pause"),
    path("campaigns/<int:pk>/activate/", views.campaign_activate, name="campaign_activate"),
    path("campaigns/<int:pk>/duplicate/", views.campaign_duplicate, name="campaign_duplicate"),
    path("campaigns/<int:pk>/creatives/new/", views.creative_create, name="creative_create"),
    path("creatives/<int:pk>/edit/", views.creative_edit, name="creative_edit"),
    path("creatives/<int:pk>/toggle/", views.creative_toggle, name="creative_toggle"),
    path("performance/", views.performance, name="performance"),
    path("performance.csv", views.performance_csv, name="performance_csv"),
    path("preview/", views.preview, name="preview"),
]
