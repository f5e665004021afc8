"""The process-wide campaign index: loaded from the database, rebuilt when a service
changes a campaign or creative (a version number in the cache, checked at most once a
second), and its spend counters refreshed every few seconds; both happen in a
background thread while decisions use the previous index. Its structure is
ads/campaign_index.py; selection against it is ads/selection.py.
"""

from __future__ import annotations

import logging
import threading
import time as _time

import numpy as np
from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from ads import auction, embeddings
from ads.campaign_index import CampaignIndex, CompiledKeyword, Entry, build_index

logger = logging.getLogger(__name__)

VERSION_CACHE_KEY = "ads:index:version"
VERSION_CHECK_S = 1.0
SPEND_REFRESH_S = 10.0
FULL_REFRESH_S = 300.0
MAX_INLINE_EMBEDDINGS = 200
# Extra texts an entry is matched by (its creative's question alone, each positive
# keyword phrase of its campaign): short, shared by many campaigns, not stored in the
# database; embedded while the index is built and kept in a per-process memo. A build
# embeds at most this many new ones; the rest are added by the next builds.
MAX_NEW_TEXT_EMBEDDINGS = 5000
MAX_MEMO_TEXTS = 200_000
_text_memo: dict[str, np.ndarray] = {}
_memo_lock = threading.Lock()


def servable_creatives(*, now):
    """The creatives that may serve now: approved and switched on, in an active campaign
    that has not ended, of an advertiser staff have not switched off. The index loads
    these; a decision checks its winner against them once more (is_still_servable)."""
    from ads.models import Campaign, Creative

    return Creative.objects.filter(
        review_status=Creative.ReviewStatus.APPROVED,
        is_active=True,
        campaign__status=Campaign.Status.ACTIVE,
        campaign__advertiser__is_active=True,
    ).filter(Q(campaign__ends_at__isnull=True) | Q(campaign__ends_at__gt=now))


def is_still_servable(*, creative_id: int, now) -> bool:
    """One indexed query at the moment of serving: the index in memory is rebuilt in the
    background (seconds after a change, in every process), so a creative paused,
    rejected or of an advertiser suspended since then must not serve meanwhile."""
    return servable_creatives(now=now).filter(pk=creative_id).exists()


def load_index(*, version: object = None) -> CampaignIndex:
    """Every servable (campaign, creative): campaign active, creative approved and
    active, advertiser active; embeddings from the cached columns."""
    from ads.models import Campaign, CampaignKeyword, Creative

    now = timezone.now()
    rows = servable_creatives(now=now).select_related("campaign", "campaign__advertiser").order_by("id")
    entries: list[Entry] = []
    hints: list[np.ndarray | None] = []
    creatives: list[np.ndarray | None] = []
    hint_cache: dict[int, np.ndarray | None] = {}
    missing: list[tuple[str, int, str]] = []
    for creative in rows.iterator(chunk_size=2000):
        campaign = creative.campaign
        advertiser = campaign.advertiser
        entries.append(
            Entry(
                campaign_id=campaign.id,
                creative_id=creative.id,
                advertiser_id=advertiser.id,
                advertiser_name=advertiser.name,
                paid_by=advertiser.display_paid_by,
                campaign_name=campaign.name,
                headline=creative.headline,
                text=creative.text,
                question=creative.question,
                display_domain=creative.display_domain,
                bid_type=campaign.bid_type,
                bid_micros=campaign.max_bid_micros,
                language=campaign.language,
                starts_at=campaign.starts_at,
                ends_at=campaign.ends_at,
                pacing=campaign.pacing,
                daily_budget_micros=campaign.daily_budget_micros,
                lifetime_budget_micros=campaign.lifetime_budget_micros,
                frequency_cap_hour=campaign.frequency_cap_hour,
                frequency_cap_day=campaign.frequency_cap_day,
                pctr=auction.predicted_ctr(clicks=creative.clicks_count, impressions=creative.impressions_count),
                spent_micros=campaign.spent_micros,
                spent_today_micros=campaign.spent_today_micros,
                spend_day=campaign.spend_day,
            )
        )
        if campaign.id not in hint_cache:
            vector = None
            if campaign.context_hints.strip():
                if campaign.hints_embedding_hash == embeddings.text_hash(campaign.context_hints):
                    vector = embeddings.from_bytes(campaign.hints_embedding)
                if vector is None:
                    missing.append(("hints", campaign.id, campaign.context_hints))
            hint_cache[campaign.id] = vector
        hints.append(hint_cache[campaign.id])
        vector = None
        if creative.embedding_hash == embeddings.text_hash(creative.embedding_text):
            vector = embeddings.from_bytes(creative.embedding)
        if vector is None:
            missing.append(("creative", len(entries) - 1, creative.embedding_text))
        creatives.append(vector)
    if missing:
        # Normally a task has cached these; embed the first few inline so a fresh
        # campaign serves at once, and leave the rest to the task.
        todo = missing[:MAX_INLINE_EMBEDDINGS]
        vectors = embeddings.embed_many([text for _, _, text in todo])
        for (kind, key, text), vector in zip(todo, vectors, strict=True):
            # Cached on the row as the embedding task would (idempotent), so the next build reads it.
            blob, digest = embeddings.to_bytes(vector), embeddings.text_hash(text)
            if kind == "hints":
                hint_cache[key] = vector
                Campaign.objects.filter(pk=key).update(hints_embedding=blob, hints_embedding_hash=digest)
            else:
                creatives[key] = vector
                Creative.objects.filter(pk=entries[key].creative_id).update(embedding=blob, embedding_hash=digest)
        hints = [hint_cache[e.campaign_id] for e in entries]
    zero = np.zeros(embeddings.DIM, dtype=np.float32)
    creatives_final = [v if v is not None else zero for v in creatives]
    campaign_ids = {e.campaign_id for e in entries}
    keywords = [
        CompiledKeyword(
            campaign_id=k.campaign_id,
            text=k.text,
            match_type=k.match_type,
            words=_words(k.text),
            stems=_stems(k.text),
            is_negative=k.is_negative,
        )
        for k in CampaignKeyword.objects.filter(
            campaign__status=Campaign.Status.ACTIVE, campaign__advertiser__is_active=True
        ).only("campaign_id", "text", "match_type", "is_negative")
        if k.campaign_id in campaign_ids
    ]
    texts = _extra_texts(entries, keywords)
    return build_index(
        entries=entries, hints=hints, creatives=creatives_final, keywords=keywords, texts=texts, version=version
    )


def _memo_vectors(texts: list[str]) -> dict[str, np.ndarray]:
    """The memoised vectors of `texts`, embedding up to MAX_NEW_TEXT_EMBEDDINGS new ones."""
    with _memo_lock:
        new = [t for t in dict.fromkeys(texts) if t not in _text_memo][:MAX_NEW_TEXT_EMBEDDINGS]
        if new:
            if len(_text_memo) + len(new) > MAX_MEMO_TEXTS:
                _text_memo.clear()
            _text_memo.update(zip(new, embeddings.embed_many(new), strict=True))
        return {t: _text_memo[t] for t in texts if t in _text_memo}


def _extra_texts(entries: list[Entry], keywords: list[CompiledKeyword]) -> list[list[np.ndarray]]:
    by_campaign: dict[int, list[str]] = {}
    for k in keywords:
        if not k.is_negative and k.words:
            by_campaign.setdefault(k.campaign_id, []).append(k.text.strip())
    per_entry = [[e.question.strip(), *by_campaign.get(e.campaign_id, [])] for e in entries]
    vectors = _memo_vectors([t for texts in per_entry for t in texts if t])
    return [[vectors[t] for t in dict.fromkeys(texts) if t in vectors] for texts in per_entry]


def _words(text: str) -> tuple[str, ...]:
    from ads.matching import tokenize

    return tuple(tokenize(text))


def _stems(text: str) -> tuple[str, ...]:
    from ads.matching import stem, tokenize

    return tuple(stem(w) for w in tokenize(text))


def load_spend() -> list[tuple[int, int, int, object]]:
    from ads.models import Campaign

    return list(
        Campaign.objects.filter(status=Campaign.Status.ACTIVE).values_list(
            "id", "spent_micros", "spent_today_micros", "spend_day"
        )
    )


# --- the process-wide index -------------------------------------------------------

_lock = threading.Lock()
_index: CampaignIndex | None = None
_local_version = 0
_last_version_check = 0.0
_refreshing = False


def _shared_version() -> object:
    from django.core.cache import cache

    try:
        return cache.get(VERSION_CACHE_KEY, 0)
    except Exception:  # a missing cache table must never stop a decision
        return None


def invalidate() -> None:
    """Called by services after a change that affects serving (campaign, creative,
    advertiser). Bumps the shared version (every process) and the local one."""
    global _local_version
    from django.core.cache import cache

    _local_version += 1
    try:
        cache.set(VERSION_CACHE_KEY, _time.time_ns(), timeout=None)
    except Exception:
        logger.debug("ads: could not bump the index version in the cache", exc_info=True)


def _sync_mode() -> bool:
    return settings.ADS_INDEX_SYNC


def _rebuild(full: bool) -> None:
    global _index, _refreshing
    try:
        version = (_local_version, _shared_version())
        if full or _index is None:
            new = load_index(version=version)
            _index = new
        else:
            _index.refresh_spend(load_spend())
    except Exception:
        logger.exception("ads: rebuilding the campaign index failed; keeping the previous one")
    finally:
        _refreshing = False


def _rebuild_in_thread(full: bool) -> None:
    def run() -> None:
        close_old_connections()
        try:
            _rebuild(full)
        finally:
            connection.close()

    threading.Thread(target=run, name="ads-index-refresh", daemon=True).start()


def get_index() -> CampaignIndex:
    """The current index; stale ones are refreshed in the background (synchronously
    in tests, with settings.ADS_INDEX_SYNC)."""
    global _last_version_check, _refreshing
    if _index is None:
        with _lock:
            if _index is None:
                _rebuild(full=True)
        return _index if _index is not None else build_index(entries=[], hints=[], creatives=[], keywords=[])
    index = _index
    now = _time.monotonic()
    if _sync_mode():
        if index.version is None or index.version[0] != _local_version:
            _rebuild(full=True)
        elif now - index.spend_refreshed_at > SPEND_REFRESH_S:
            _rebuild(full=False)
        return _index
    if now - _last_version_check < VERSION_CHECK_S:
        return index
    _last_version_check = now
    full = (
        index.version is None
        or index.version != (_local_version, _shared_version())
        or now - index.built_at > FULL_REFRESH_S
    )
    stale_spend = now - index.spend_refreshed_at > SPEND_REFRESH_S
    if (full or stale_spend) and not _refreshing:
        with _lock:
            if not _refreshing:
                _refreshing = True
                _rebuild_in_thread(full)
    return index


def is_loaded() -> bool:
    return _index is not None


def reset() -> None:
    """Forget the index (tests, and after a data import)."""
    global _index
    with _lock:
        _index = None
