from django.urls import path

from assistant import views

app_name = "assistant"
urlpatterns = [
    path("", views.home, name="home"),
    path("c/<uuid:conversation_id>/", views.home, name="conversation"),
    path("conversations/", views.conversation_list, name="conversation_list"),
    path("c/<uuid:conversation_id>/header", views.conversation_header, name="conversation_header"),
    path("c/<uuid:conversation_id>/title", views.conversation_title, name="conversation_title"),
    path("c/<uuid:conversation_id>/rename", views.conversation_rename, name="conversation_rename"),
    path("c/<uuid:conversation_id>/delete", views.conversation_delete, name="conversation_delete"),
    path("c/<uuid:conversation_id>/share", views.conversation_share, name="conversation_share"),
    path("c/<uuid:conversation_id>/share/revoke", views.conversation_share_revoke, name="conversation_share_revoke"),
    path("c/<uuid:conversation_id>/export.<str:fmt>", views.conversation_export, name="conversation_export"),
    path("c/<uuid:conversation_id>/branch", views.conversation_branch, name="conversation_branch"),
    path("m/<uuid:message_id>/feedback", views.message_feedback, name="message_feedback"),
    path("s/<str:token>/", views.shared, name="shared"),
]
