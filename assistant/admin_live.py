"""The staff page of what runs now (admin → "Live runs", /<admin>/live/): every running
answer with its owner process (and whether that process still beats), tier, age and
tokens so far, with a stop button; the latest failed runs with their id (the id the user
was shown, and the one on every log line of the run); and each inference server's health
and latency (config/health.py's probe, cached like /readyz's)."""

from __future__ import annotations

from datetime import timedelta

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from assistant import lifecycle, runs
from assistant.inference import estimate_tokens
from assistant.models import GenerationRun

RECENT_ERRORS = 25


def _live_runs() -> list[dict]:
    now = timezone.now()
    running = list(
        GenerationRun.objects.filter(status=GenerationRun.Status.RUNNING)
        .select_related("tier", "assistant_message")
        .order_by("started_at")[:500]
    )
    alive = lifecycle.processes_alive({run.owner.split("|")[0] for run in running})
    return [
        {
            "id": str(run.pk),
            "process": run.owner.split("|")[0],
            "process_alive": run.owner.split("|")[0] in alive,
            "tier": run.tier.display_name if run.tier else "—",
            "age_s": round((now - run.started_at).total_seconds()),
            "heartbeat_s": round((now - run.heartbeat_at).total_seconds(), 1),
            # The last snapshot's text (every ASSISTANT_SNAPSHOT_INTERVAL_S), estimated.
            "tokens": estimate_tokens(run.assistant_message.content[run.text_before:]),
            "deltas": run.last_seq,
        }
        for run in running
    ]


def _recent_errors() -> list[GenerationRun]:
    since = timezone.now() - timedelta(days=1)
    return list(
        GenerationRun.objects.filter(status=GenerationRun.Status.ERROR, finished_at__gte=since)
        .select_related("tier")
        .order_by("-finished_at")[:RECENT_ERRORS]
    )


def _upstreams() -> dict:
    from config.health import readiness

    return readiness().get("inference", {})


@require_http_methods(["GET", "POST"])
def live_runs(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        run = GenerationRun.objects.filter(pk=request.POST.get("run_id", ""), status=GenerationRun.Status.RUNNING).first()
        if run is None:
            messages.warning(request, "That run is not running any more.")
        else:
            # Reaches the owning process wherever it runs (its control channel).
            async_to_sync(runs.run_stop)(run_id=str(run.pk), owner=run.owner)
            messages.success(request, f"Stop sent to run {run.pk}.")
        return HttpResponseRedirect(reverse("admin-live-runs"))
    context = {
        **admin.site.each_context(request),
        "title": "Live runs",
        "live": _live_runs(),
        "errors": _recent_errors(),
        "inference": _upstreams(),
    }
    return TemplateResponse(request, "admin/live_runs.html", context)
