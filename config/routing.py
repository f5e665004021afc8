from assistant.routing import websocket_urlpatterns as assistant_ws

websocket_urlpatterns = [*assistant_ws]
