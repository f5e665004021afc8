"""/metrics: Prometheus' text format, for staff or a caller sending
`Authorization: Bearer <METRICS_TOKEN>` (a scraper); everyone else gets 403.

The official prometheus_client. With PROMETHEUS_MULTIPROC_DIR set (production: several
processes per host or container, Celery's pool processes among them) each process writes
its live metrics to files there and a scrape adds them up (MultiProcessCollector);
without it, this process's registry is served. Either way the collectors over database
rows (ads.metrics, billing.metrics) and the Celery queue depth are read at the scrape.

The definitions live with their owners: assistant/metrics.py, ads/metrics.py,
billing/metrics.py; this module serves them and counts Celery task failures.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

celery_task_failures = Counter("lhama_celery_task_failures", "Celery tasks that raised, per task.", ["task"])

# kombu's Redis transport keeps a queue's messages in one list per priority step.
_REDIS_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


class CeleryQueueCollector(Collector):
    """Messages waiting in Celery's default queue (Redis lists, or the filesystem broker's files)."""

    def collect(self):
        depth = self._depth()
        if depth is not None:
            family = GaugeMetricFamily("lhama_celery_queue_depth", "Celery messages waiting, per queue.", labels=["queue"])
            family.add_metric(["celery"], depth)
            yield family

    @staticmethod
    def _depth() -> int | None:
        broker = settings.CELERY_BROKER_URL
        if broker.startswith(("redis://", "rediss://")):
            import redis

            client = redis.Redis.from_url(broker, socket_timeout=2)
            try:
                with client.pipeline() as pipe:
                    for suffix in _REDIS_PRIORITY_SUFFIXES:
                        pipe.llen("celery" + suffix)
                    return sum(pipe.execute())
            except redis.RedisError:
                return None
            finally:
                client.close()
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in")
        if folder:
            return sum(1 for _ in Path(folder).glob("*.msg"))
        return None


def _registry() -> CollectorRegistry:
    from ads.metrics import AdEventsCollector
    from billing.metrics import WebhookEventsCollector

    if settings.PROMETHEUS_MULTIPROC_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        for collector in (AdEventsCollector(), WebhookEventsCollector(), CeleryQueueCollector()):
            registry.register(collector)
        return registry
    registry = CollectorRegistry(auto_describe=False)
    for collector in (_Live(), AdEventsCollector(), WebhookEventsCollector(), CeleryQueueCollector()):
        registry.register(collector)
    return registry


class _Live(Collector):
    """This process's own registry (single-process mode)."""

    def collect(self):
        yield from REGISTRY.collect()


def _allowed(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    return bool(token) and header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode())


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse("Forbidden: staff, or a bearer token.\n", status=403, content_type="text/plain")
    # Make sure every app's live metrics are defined (and so exported at 0) before a scrape.
    import ads.metrics  # noqa: F401
    import assistant.metrics  # noqa: F401
    import billing.metrics  # noqa: F401

    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


def celery_metrics_connect() -> None:
    """Count task failures (config/celery.py calls this), and in multiprocess mode mark a
    pool process's live gauges dead when it exits."""
    from celery.signals import task_failure, worker_process_shutdown

    def on_failure(sender=None, **kwargs) -> None:
        celery_task_failures.labels(task=getattr(sender, "name", "unknown")).inc()

    def on_shutdown(pid=None, **kwargs) -> None:
        if settings.PROMETHEUS_MULTIPROC_DIR and pid:
            multiprocess.mark_process_dead(pid)

    task_failure.connect(on_failure, weak=False)
    worker_process_shutdown.connect(on_shutdown, weak=False)
