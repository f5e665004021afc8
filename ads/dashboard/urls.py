"""The advertiser dashboard, under /ads/ (included by ads/urls.py)."""

from django.urls import path

from ads.dashboard import views, views_campaigns, views_reports

app_name = "dashboard"

urlpatterns = [
    path("", views.landing, name="landing"),
    path("start/", views.org_create, name="org_create"),
    path("account/", views.overview, name="overview"),
    path("account/balance/", views.balance, name="balance"),
    path("account/edit/", views.org_edit, name="org_edit"),
    path("account/switch/<int:advertiser_id>/", views.org_switch, name="org_switch"),
    path("account/topup/", views.topup, name="topup"),
    path("account/members/", views.member_invite, name="member_invite"),
    path("join/<str:token>/", views.member_accept, name="member_accept"),
    path("campaigns/", views_campaigns.campaign_list, name="campaigns"),
    path("campaigns/new/", views_campaigns.campaign_create, name="campaign_create"),
    path("campaigns/<int:pk>/", views_campaigns.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:pk>/edit/", views_campaigns.campaign_edit, name="campaign_edit"),
    path("campaigns/<int:pk>/pause/", views_campaigns.campaign_pause, name="campaign_pause"),
    path("campaigns/<int:pk>/activate/", views_campaigns.campaign_activate, name="campaign_activate"),
    path("campaigns/<int:pk>/duplicate/", views_campaigns.campaign_duplicate, name="campaign_duplicate"),
    path("campaigns/<int:pk>/creatives/new/", views_campaigns.creative_create, name="creative_create"),
    path("creatives/<int:pk>/edit/", views_campaigns.creative_edit, name="creative_edit"),
    path("creatives/<int:pk>/toggle/", views_campaigns.creative_toggle, name="creative_toggle"),
    path("performance/", views_reports.performance, name="performance"),
    path("performance.csv", views_reports.performance_csv, name="performance_csv"),
    path("preview/", views_reports.preview, name="preview"),
]
