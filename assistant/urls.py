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
    path("c/<uuid:conversation_id>/move", views.conversation_move, name="conversation_move"),
    path("m/<uuid:message_id>/feedback", views.message_feedback, name="message_feedback"),
    path("projects/new", views.project_create, name="project_create"),
    path("p/<uuid:project_id>/", views.home, name="project"),
    path("p/<uuid:project_id>/edit", views.project_edit, name="project_edit"),
    path("p/<uuid:project_id>/delete", views.project_delete, name="project_delete"),
    path("attachments/", views.attachment_upload, name="attachment_upload"),
    path("attachments/<uuid:attachment_id>/remove", views.attachment_remove, name="attachment_remove"),
    path("s/<str:token>/", views.shared, name="shared"),
]
