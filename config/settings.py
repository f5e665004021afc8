"""Lhama settings. Everything comes from the environment (a `.env` file is read if
present). With nothing set, Lhama runs on the embedded defaults: SQLite in WAL mode,
the in-process channel layer, a filesystem Celery broker, the local llama.cpp server.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from config import logs

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("LHAMA_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- core ------------------------------------------------------------------------
PRODUCTION = env.bool("LHAMA_PRODUCTION", default=False)


def get_mandatory(name: str, default: str = "") -> str:
    """A secret that production cannot run without (Zulip's get_mandatory_secret)."""
    value = env.str(name, default="")
    if value:
        return value
    if PRODUCTION:
        raise ImproperlyConfigured(f"{name} must be set when LHAMA_PRODUCTION is on.")
    return default


SECRET_KEY = get_mandatory("SECRET_KEY", default="django-insecure-lhama-development-only")
DEBUG = env.bool("DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG cannot be on when LHAMA_PRODUCTION is on.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when LHAMA_PRODUCTION is on.")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The public address: e-mails, Stripe redirects, and the origin chat sockets must come from.
SITE_URL = get_mandatory("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    "accounts",
    "assistant",
    "ads",
    "billing",
    "assistant.api",
]

MIDDLEWARE = [
    "config.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.context_processors.site",
            ],
        },
    },
]

# --- database --------------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", default="")
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Persistent connections: each thread that serves the chat's database calls keeps
        # its connection (opening one per message cost several ms before the first token).
        DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.str("SQLITE_PATH", default=str(VAR_DIR / "lhama.sqlite3")),
            "OPTIONS": {
                # Concurrency: WAL lets readers run beside the one writer, IMMEDIATE
                # takes the write lock at BEGIN so two writers queue on the busy
                # timeout instead of failing with "database is locked".
                "init_command": (
                    "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA foreign_keys=ON;"
                ),
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # Tests use a file too (one per test process), not the shared-cache in-memory
            # database, whose table locks fail at once instead of waiting: concurrency
            # tests must see the WAL + busy-timeout behaviour that production has.
            "TEST": {"NAME": str(Path(tempfile.gettempdir()) / f"lhama-test-{os.getpid()}.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis: channel layer, cache, run logs, quotas ------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# Every key and channel Lhama puts in Redis starts with this: two deployments sharing
# one Redis keep apart by giving each its own prefix.
REDIS_PREFIX = env.str("REDIS_PREFIX", default="lhama")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis on a pool that waits for a free connection (config/channel_layers.py).
            "BACKEND": "config.channel_layers.BoundedRedisChannelLayer",
            # redis-py 8 defaults to a 5 s socket timeout, which races channels_redis's 5 s
            # BZPOPMIN and kills idle sockets with TimeoutError: give reads room. At most
            # 32 connections per process; a command waits for one (config/channel_layers.py).
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "max_connections": 32}],
                "prefix": REDIS_PREFIX,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_PREFIX,
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "lhama_cache",
        }
    }

# --- celery ----------------------------------------------------------------------
# Embedded default: kombu's filesystem transport, so a real worker process runs
# without Redis. With REDIS_URL set, Redis is the broker.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = VAR_DIR / "celery" / "queue"
    _processed_dir = VAR_DIR / "celery" / "processed"
    _control_dir = VAR_DIR / "celery" / "control"
    for _d in (_queue_dir, _processed_dir, _control_dir):
        _d.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "store_processed": False,
        "control_folder": str(_control_dir),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE: dict = {}  # each app adds its periodic tasks in its apps.py

# --- auth ------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
LOGIN_URL = "account_login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

EMAIL_URL = env.str("EMAIL_URL", default="")
if EMAIL_URL:
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Lhama <noreply@localhost>")

ADMIN_URL = env.str("ADMIN_URL", default="admin/").strip("/") + "/"

# --- i18n, static ----------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- security --------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
# A full URL (with its path and query: conversation ids, click tokens) never leaves the
# site; other sites get no Referer at all, not even our origin.
SECURE_REFERRER_POLICY = "same-origin"
# Production-mode `manage.py check --deploy` passes with nothing silenced. The one
# warning a deployer may choose: with SECURE_SSL_REDIRECT=0 (TLS ends at a proxy that
# already redirects to https, docs/deploy.md) security.W008 is deliberate.
SILENCED_SYSTEM_CHECKS = ["security.W008"] if PRODUCTION and not SECURE_SSL_REDIRECT else []
# The client's address is REMOTE_ADDR; X-Forwarded-For is read only when the immediate
# peer is one of these proxies (addresses or networks, e.g. 10.0.0.0/8): config/clientip.py.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

# Content-Security-Policy, on in every mode so development sees what production does.
# Scripts only from our own origin (no inline script, no CDN). The chat socket is
# same-origin, which 'self' covers: since CSP Level 3 'self' also matches ws: and wss:
# on the page's own host and port (http page -> ws, https page -> wss; Chrome 71+,
# Firefox, Safari 16+), so no host outside the site can be reached by a socket or fetch.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF, "https://checkout.stripe.com", "https://billing.stripe.com"],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}

# /readyz (config/health.py): everyone gets the status; staff, or a caller sending
# `Authorization: Bearer <READYZ_TOKEN>`, also the checks. Empty: no token works.
READYZ_TOKEN = env.str("READYZ_TOKEN", default="")
# Inference servers are probed at most once per this many seconds per web process.
READYZ_CACHE_S = env.float("READYZ_CACHE_S", default=5.0)

# --- inference -------------------------------------------------------------------
# One OpenAI-compatible URL per tier, or VLLM_BASE_URL for all; when none is set
# every tier uses the embedded llama.cpp server below.
LLM_EMBEDDED_HOST = env.str("LLM_EMBEDDED_HOST", default="127.0.0.1")
LLM_EMBEDDED_PORT = env.int("LLM_EMBEDDED_PORT", default=8081)
LLM_EMBEDDED_URL = env.str("LLM_EMBEDDED_URL", default=f"http://{LLM_EMBEDDED_HOST}:{LLM_EMBEDDED_PORT}/v1")
LLM_EMBEDDED_MODEL_PATH = env.str("LLM_MODEL_PATH", default="")  # a GGUF file; SmolLM2-135M when empty
LLM_EMBEDDED_ALIAS = env.str("LLM_EMBEDDED_ALIAS", default="smollm2-135m-instruct")
VLLM_BASE_URL = env.str("VLLM_BASE_URL", default="")
VLLM_BASE_URL_8B = env.str("VLLM_BASE_URL_8B", default="")
VLLM_BASE_URL_70B = env.str("VLLM_BASE_URL_70B", default="")
VLLM_BASE_URL_405B = env.str("VLLM_BASE_URL_405B", default="")
VLLM_API_KEY = env.str("VLLM_API_KEY", default="")
# Chat runs (docs/protocol.md): upstream deadlines, coalescing window, message cap.
LLM_CONNECT_TIMEOUT_S = env.float("LLM_CONNECT_TIMEOUT_S", default=5.0)
LLM_FIRST_TOKEN_TIMEOUT_S = env.float("LLM_FIRST_TOKEN_TIMEOUT_S", default=60.0)
LLM_BETWEEN_TOKENS_TIMEOUT_S = env.float("LLM_BETWEEN_TOKENS_TIMEOUT_S", default=30.0)
ASSISTANT_COALESCE_S = env.float("ASSISTANT_COALESCE_S", default=0.04)
ASSISTANT_MAX_MESSAGE_CHARS = env.int("ASSISTANT_MAX_MESSAGE_CHARS", default=8000)
# A running answer saves its text and heartbeat this often; one silent for
# ASSISTANT_RUN_STALE_S is taken for orphaned (its process died) and marked interrupted.
ASSISTANT_SNAPSHOT_INTERVAL_S = env.float("ASSISTANT_SNAPSHOT_INTERVAL_S", default=3.0)
ASSISTANT_RUN_STALE_S = env.float("ASSISTANT_RUN_STALE_S", default=30.0)
# A temporary chat is deleted when its socket closes; one a crashed process left behind is
# deleted by the sweep once untouched this long (assistant.temporary).
ASSISTANT_TEMPORARY_IDLE_S = env.float("ASSISTANT_TEMPORARY_IDLE_S", default=6 * 3600.0)
# Attachments (assistant.attachments): the uploaded file's size, a PDF's pages, the text
# extracted from one file, and the files one message may carry. The text must still fit
# the tier's context with the message (a too-large one is refused, saying how much fits).
ASSISTANT_ATTACHMENT_MAX_BYTES = env.int("ASSISTANT_ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024)
ASSISTANT_ATTACHMENT_MAX_PAGES = env.int("ASSISTANT_ATTACHMENT_MAX_PAGES", default=100)
ASSISTANT_ATTACHMENT_MAX_CHARS = env.int("ASSISTANT_ATTACHMENT_MAX_CHARS", default=400_000)
ASSISTANT_MESSAGE_MAX_ATTACHMENTS = env.int("ASSISTANT_MESSAGE_MAX_ATTACHMENTS", default=5)
# An upload that no message used is deleted by the hourly sweep once this old.
ASSISTANT_ATTACHMENT_UNSENT_S = env.float("ASSISTANT_ATTACHMENT_UNSENT_S", default=24 * 3600.0)

# --- ads ---------------------------------------------------------------------------
ADS_DECISION_BUDGET_S = env.float("ADS_DECISION_BUDGET_S", default=0.25)  # late decision = no ad
# A signed click URL lives an hour: the card sits below an answer being read; an older
# link is a replay (docs/ads.md, "Clicks").
ADS_CLICK_MAX_AGE_S = env.int("ADS_CLICK_MAX_AGE_S", default=3600)
ADS_DUPLICATE_CLICK_WINDOW_S = env.int("ADS_DUPLICATE_CLICK_WINDOW_S", default=30 * 60)
ADS_IMPRESSION_ACK_WINDOW_S = env.int("ADS_IMPRESSION_ACK_WINDOW_S", default=3600)
# Viewable (MRC): in view for this long; an acknowledgement sooner after the ad frame
# was sent, or reporting less, is not viewable.
ADS_VIEWABLE_MIN_MS = env.int("ADS_VIEWABLE_MIN_MS", default=1000)
# Tracking endpoints (ack, click, feedback, dismiss), per viewer and per client network,
# in django-ratelimit's notation; over it: 429, and a click is redirected but not billed.
ADS_RATE_PER_VIEWER = env.str("ADS_RATE_PER_VIEWER", default="30/m")
ADS_RATE_PER_IP = env.str("ADS_RATE_PER_IP", default="300/m")
# Guests: the first this many new guest sessions seen from one network per hour are billable.
ADS_GUEST_SESSIONS_PER_IP_HOUR = env.int("ADS_GUEST_SESSIONS_PER_IP_HOUR", default=5)
# Whether a guest session has had a complete answer (ads imports no app above it): a
# callable taking session_key=, named like BILLING_MODEL_TIER_NAMES.
ADS_GUEST_ANSWERED = "assistant.selectors.session_has_complete_answer"
ADS_INDEX_SYNC = env.bool("ADS_INDEX_SYNC", default=False)  # rebuild the campaign index in the caller (tests)
# The public ad library keeps a creative for this long after it last served (DSA art. 39).
ADS_LIBRARY_RETENTION_DAYS = env.int("ADS_LIBRARY_RETENTION_DAYS", default=365)
# The sensitive gate reads this many of the latest user turns (each in full, on its
# own) plus the latest assistant answer: one sensitive turn among them blocks the ad.
ADS_GATE_WINDOW_TURNS = env.int("ADS_GATE_WINDOW_TURNS", default=8)
# The languages ads are served in: a conversation's language is detected among them
# (ads/language.py); one in none of them reaches only campaigns without a language.
ADS_LANGUAGES = env.list("ADS_LANGUAGES", default=["en", "fr", "de", "es"])

# --- the API (/api/v1/, docs/api.md) -----------------------------------------------
# A request body over this is refused with 413 before it is parsed.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
# A running API answer re-checks its key this often: a revoked key's stream sends nothing
# more after at most this long (plus one cache read).
API_KEY_CHECK_INTERVAL_S = env.float("API_KEY_CHECK_INTERVAL_S", default=0.5)

# --- stripe ----------------------------------------------------------------------
STRIPE_SECRET_KEY = get_mandatory("STRIPE_SECRET_KEY")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")  # e.g. a localstripe URL in tests

# --- billing ---------------------------------------------------------------------
# How long a past-due subscription keeps its plan before falling back to Free.
BILLING_GRACE_DAYS = env.int("BILLING_GRACE_DAYS", default=7)
# A quota reservation never settled (its process died) stops counting after this.
BILLING_RESERVATION_TTL_S = env.int("BILLING_RESERVATION_TTL_S", default=900)
# People who are not signed in.
BILLING_GUEST_TIERS = env.list("BILLING_GUEST_TIERS", default=["llama-3.1-8b"])
BILLING_GUEST_DAILY_TOKENS = env.int("BILLING_GUEST_DAILY_TOKENS", default=20_000)
BILLING_GUEST_REQUESTS_PER_MINUTE = env.int("BILLING_GUEST_REQUESTS_PER_MINUTE", default=4)
BILLING_GUEST_CONCURRENT_RUNS = env.int("BILLING_GUEST_CONCURRENT_RUNS", default=1)
BILLING_GUEST_MAX_CONTEXT = env.int("BILLING_GUEST_MAX_CONTEXT", default=4096)
# Guests are also counted per network (their client address: config/clientip.py, kept
# only as a keyed hash) and all together; a network starts at most so many new guest
# sessions an hour. A new cookie jar is not a new budget (docs/billing.md, "Guests").
BILLING_GUEST_ADDRESS_DAILY_TOKENS = env.int("BILLING_GUEST_ADDRESS_DAILY_TOKENS", default=BILLING_GUEST_DAILY_TOKENS)
BILLING_GUEST_ADDRESS_REQUESTS_PER_MINUTE = env.int(
    "BILLING_GUEST_ADDRESS_REQUESTS_PER_MINUTE", default=2 * BILLING_GUEST_REQUESTS_PER_MINUTE
)
BILLING_GUEST_ADDRESS_CONCURRENT_RUNS = env.int(
    "BILLING_GUEST_ADDRESS_CONCURRENT_RUNS", default=2 * BILLING_GUEST_CONCURRENT_RUNS
)
BILLING_GUEST_SESSIONS_PER_ADDRESS_HOUR = env.int("BILLING_GUEST_SESSIONS_PER_ADDRESS_HOUR", default=5)
BILLING_GUEST_TOTAL_DAILY_TOKENS = env.int("BILLING_GUEST_TOTAL_DAILY_TOKENS", default=20_000_000)
# Where billing learns the model tiers' names (plans hold tier slugs; billing imports no
# other app): a callable returning (slug, display name) pairs in display order.
BILLING_MODEL_TIER_NAMES = "assistant.selectors.tier_names"
# Metered API billing (billing.metering): records reported to Stripe per batch, and how
# long a reporter's claim on a batch lasts (a reporter that died: its batch waits so long).
BILLING_METER_BATCH_SIZE = env.int("BILLING_METER_BATCH_SIZE", default=100)
BILLING_METER_CLAIM_S = env.int("BILLING_METER_CLAIM_S", default=300)
# Told after a top-up, a refund or a dispute moved a balance (called with account_id=,
# after commit): ads pauses the advertiser's campaigns below zero and resumes them above.
BILLING_BALANCE_CHANGED = "ads.services.funding.advertiser_balance_changed"

# --- operations: logs, metrics, drain (docs/deploy.md) ---------------------------------
# JSON lines in production, readable lines otherwise; every line carries the run's or the
# request's id (config/logs.py).
LOGGING = logs.logging_config(production=PRODUCTION, level=env.str("LOG_LEVEL", default="INFO"))
# /metrics (config/metrics.py): staff, or `Authorization: Bearer <METRICS_TOKEN>`. Empty: no token works.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Where prometheus_client's multiprocess mode keeps each process's files (it reads the
# variable itself; one directory per host or container, emptied when it starts).
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
# SIGTERM to a web process: it refuses new sockets and runs, tells its sockets to reconnect
# elsewhere, and gives the runs it owns this long to finish; what is left is saved as
# interrupted (the user can continue it).
LHAMA_DRAIN_S = env.float("LHAMA_DRAIN_S", default=25.0)
# Each web process writes a heartbeat this often; the reaper takes a process silent for
# ASSISTANT_PROCESS_STALE_S for dead (SIGKILL, a crash) and interrupts its runs.
ASSISTANT_PROCESS_HEARTBEAT_S = env.float("ASSISTANT_PROCESS_HEARTBEAT_S", default=2.0)
ASSISTANT_PROCESS_STALE_S = env.float("ASSISTANT_PROCESS_STALE_S", default=6.0)
