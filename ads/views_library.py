"""The public ad library's pages and JSON (/ads/library/). Public: no login, no
session is read or written. Thin: read the GET parameters, call ads.library."""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ads import library
from ads.models import Creative

PER_PAGE = 20


def _page(request: HttpRequest):
    q = request.GET.get("q", "")[:200]
    advertiser = request.GET.get("advertiser", "")[:200]
    paginator = Paginator(library.library_entries(q=q, advertiser=advertiser), PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return q, advertiser, page


def _entry(creative_id: int) -> dict:
    try:
        creative = library.library_entry_get(creative_id=creative_id)
    except Creative.DoesNotExist:
        raise Http404("No such entry in the ad library.") from None
    return library.library_entry_as_dict(creative=creative)


@require_GET
def library_list(request: HttpRequest) -> HttpResponse:
    q, advertiser, page = _page(request)
    entries = [library.library_entry_as_dict(creative=c) for c in page.object_list]
    return render(
        request,
        "ads/library_list.html",
        {"q": q, "advertiser": advertiser, "page": page, "entries": entries,
         "retention_days": settings.ADS_LIBRARY_RETENTION_DAYS},
    )


@require_GET
def library_entry(request: HttpRequest, creative_id: int) -> HttpResponse:
    return render(request, "ads/library_entry.html", {"entry": _entry(creative_id)})


@require_GET
def library_json(request: HttpRequest) -> JsonResponse:
    q, advertiser, page = _page(request)
    return JsonResponse(
        {
            "q": q,
            "advertiser": advertiser,
            "page": page.number,
            "pages": page.paginator.num_pages,
            "count": page.paginator.count,
            "results": [library.library_entry_as_dict(creative=c) for c in page.object_list],
        }
    )


@require_GET
def library_entry_json(request: HttpRequest, creative_id: int) -> JsonResponse:
    return JsonResponse(_entry(creative_id))
