from django.urls import path, re_path

from assistant.api import views

app_name = "api"
urlpatterns = [
    path("chat/completions", views.chat_completions, name="chat_completions"),
    path("models", views.models, name="models"),
    path("models/<str:model_id>", views.model_detail, name="model_detail"),
    re_path(r"^(?P<path>.*)$", views.not_found, name="not_found"),
]
