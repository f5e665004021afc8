"""Signals the ads app sends to the apps above it.

ads must not import assistant (dependencies point one way: assistant → ads →
billing), so when an ads event matters to a conversation, ads sends a signal and the
assistant app connects a receiver that calls its own service.
"""

from django.dispatch import Signal

# Sent when a viewer dismisses a card. Arguments: conversation_id, user_id, session_key.
impression_dismissed = Signal()
