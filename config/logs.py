"""Logging: JSON lines in production (python-json-logger), readable lines otherwise, and
one id on every line that belongs to one piece of work.

The id is the run id while a generation run executes (assistant.runs sets it for the
run's task, so every line the run, its upstream request and its saving write carries it;
the same id goes to the model server as `x-request-id` and is the `run_id` of the error
frame the user sees), and nginx's `X-Request-ID` (or a new one) while an HTTP request is
served. Support greps the logs for the id the page shows.

(Named logs.py, not logging.py: a module may not shadow the standard library, ruff A005.)
"""

from __future__ import annotations

import contextvars
import logging
import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("lhama_request_id", default="-")


def request_id_get() -> str:
    return _request_id.get()


def request_id_set(value: str) -> contextvars.Token:
    """Set the id for this context (an asyncio task, a thread's request) and what it starts."""
    return _request_id.set(value)


def request_id_reset(token: contextvars.Token) -> None:
    _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record (a handler filter: it sees records of all loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True


class RequestIdMiddleware:
    """Sets the id for one HTTP request: the proxy's X-Request-ID when it is a plausible
    one, else a new one; the response echoes it unless the view set its own (the API sends
    its completion's id there). Sync and async capable (no thread hop)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    @staticmethod
    def _id(request) -> str:
        incoming = request.headers.get("X-Request-ID", "")
        if 8 <= len(incoming) <= 64 and incoming.replace("-", "").isalnum():
            return incoming
        return uuid.uuid4().hex

    def __call__(self, request):
        if self._async:
            return self._acall(request)
        rid = self._id(request)
        token = _request_id.set(rid)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response.setdefault("X-Request-ID", rid)  # a view's own id (the API's completion id) wins
        return response

    async def _acall(self, request):
        rid = self._id(request)
        token = _request_id.set(rid)
        try:
            response = await self.get_response(request)
        finally:
            _request_id.reset(token)
        response.setdefault("X-Request-ID", rid)  # a view's own id (the API's completion id) wins
        return response


_base_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args, **kwargs) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    record.request_id = _request_id.get()
    return record


def logging_config(*, production: bool, level: str) -> dict:
    """The LOGGING dict settings.py uses. Every record gets `request_id` when it is made (a
    record factory: the id is the one of the context that logs, whichever handler formats it)."""
    logging.setLogRecordFactory(_record_with_request_id)
    formatter = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(process)d",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
        }
        if production
        else {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "config.logs.RequestIdFilter"}},
        "formatters": {"lhama": formatter},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "lhama", "filters": ["request_id"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.channels.server": {"level": "WARNING"}},
    }
