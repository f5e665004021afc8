# Branches (the message tree and the active leaf), temporary chats, continued answers.

import django.db.models.deletion
from django.db import migrations, models


def link_linear_conversations(apps, schema_editor):
    """Before branches a conversation was a line: link each message to the one before it
    (an answer keeps the question it answered) and make the last one the active leaf."""
    Conversation = apps.get_model("assistant", "Conversation")
    Message = apps.get_model("assistant", "Message")
    for conversation in Conversation.objects.only("pk").iterator():
        previous = None
        changed = []
        for message in Message.objects.filter(conversation=conversation).exclude(role="system").order_by("created_at"):
            if message.parent_id is None and previous is not None:
                message.parent_id = previous.pk
                changed.append(message)
            previous = message
        if changed:
            Message.objects.bulk_update(changed, ["parent"])
        if previous is not None:
            Conversation.objects.filter(pk=conversation.pk).update(active_leaf=previous.pk)


class Migration(migrations.Migration):

    dependencies = [
        ("assistant", "0002_message_created_at_run_owner"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="active_leaf",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="assistant.message",
            ),
        ),
        migrations.AddField(
            model_name="conversation",
            name="is_temporary",
            field=models.BooleanField(db_index=True, default=False),
        ),
        migrations.AlterField(
            model_name="generationrun",
            name="assistant_message",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="runs", to="assistant.message"
            ),
        ),
        migrations.AddField(
            model_name="generationrun",
            name="text_before",
            field=models.PositiveIntegerField(
                default=0, help_text="Characters the answer had before this run (a continue): its deltas follow them."
            ),
        ),
        migrations.RunPython(link_linear_conversations, migrations.RunPython.noop),
    ]
