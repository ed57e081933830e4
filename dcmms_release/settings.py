"""Settings for the dCMMS Release Governance Portal.

One module, driven by the environment (django-environ). With nothing configured the portal runs
on SQLite and an embedded Celery broker (kombu's filesystem transport), both under ``var/``.
"""

import secrets
from pathlib import Path

import environ
from celery.schedules import crontab

from dcmms_release.db import ENGINES

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("DCMMS_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env(
    DJANGO_DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["localhost", "127.0.0.1", "[::1]"]),
    TIME_ZONE=(str, "UTC"),
)
environ.Env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None


# ---------------------------------------------------------------- secrets
def _local_secret_key() -> str:
    """A key generated once per checkout and kept under var/ (never in the repository)."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or _local_secret_key()
DEBUG = env("DJANGO_DEBUG")
ALLOWED_HOSTS = env("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# ---------------------------------------------------------------- applications
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "simple_history",
    "guardian",
    "axes",
    "checklist",
    "risks",
    "signoffs",
    "fixtures",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # overload: 503 + Retry-After before any session, query or write (dcmms_release/shedding.py)
    "dcmms_release.shedding.LoadSheddingMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # a page's own status poll does not save the session (dcmms_release/passive_session.py)
    "dcmms_release.passive_session.PassiveSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # security: CSP header, absolute session lifetime, per-user rate limit, no-store (security.py)
    "csp.middleware.CSPMiddleware",
    "dcmms_release.security.SessionLifetimeMiddleware",
    "dcmms_release.security.RateLimitMiddleware",
    "dcmms_release.security.NoStoreMiddleware",
    # NUL in a request, a value a view cannot use (a non-integer id): 400, never 500
    "dcmms_release.input_guard.BadInputMiddleware",
    "axes.middleware.AxesMiddleware",
    # failed sign-ins per account: 429 + Retry-After during the delay (account_throttle.py)
    "dcmms_release.account_throttle.AccountThrottleMiddleware",
    # every refused write is one permission_denied audit event (security.py, checklist/audit.py)
    "dcmms_release.security.DeniedAuditMiddleware",
]

ROOT_URLCONF = "dcmms_release.urls"
WSGI_APPLICATION = "dcmms_release.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "dcmms_release" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# ---------------------------------------------------------------- database
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'dcmms.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Django's backend plus a step before each COMMIT, where the audit chain links the rows the
# transaction wrote (dcmms_release.db, checklist.chain).
if DATABASES["default"]["ENGINE"] not in ENGINES:
    raise environ.ImproperlyConfigured(
        f"DATABASE_URL: {DATABASES['default']['ENGINE']} is not supported: use PostgreSQL "
        "or SQLite."
    )
DATABASES["default"]["ENGINE"] = ENGINES[DATABASES["default"]["ENGINE"]]
# Persistent connections (seconds; 0 = one connection per request). Serving PostgreSQL with
# gunicorn, 60 saves a connection set-up (a PostgreSQL backend started) on every request.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = DATABASES["default"]["CONN_MAX_AGE"] > 0
# SQLite behind a web server (several threads or processes): concurrent writers wait for each
# other instead of failing with "database is locked". WAL (readers never block the writer nor
# the writer them), a busy timeout of SQLITE_BUSY_TIMEOUT seconds, and BEGIN IMMEDIATE (a
# transaction takes the write lock when it begins: two transactions that read and then write
# never both hold a read lock and ask to write, which SQLite refuses at once whatever the
# timeout). synchronous=FULL: a committed signature survives a power loss too. Options given in
# DATABASE_URL's query string win.
if DATABASES["default"]["ENGINE"] == ENGINES["django.db.backends.sqlite3"]:
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=20),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL",
        **DATABASES["default"].get("OPTIONS", {}),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------- authentication
AUTHENTICATION_BACKENDS = [
    "dcmms_release.security.LockoutBackend",  # first: django-axes, locked-out username + IP
    "dcmms_release.account_throttle.AccountThrottleBackend",  # then: the account's delay
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {
        "NAME": "dcmms_release.security.MaximumLengthValidator",
        "OPTIONS": {"max_length": 128},
    },
]
LOGIN_URL = "admin:login"

# ---------------------------------------------------------------- i18n and time
LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE")
USE_I18N = True
USE_TZ = True

# ---------------------------------------------------------------- static files
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)

# ---------------------------------------------------------------- audit history
SIMPLE_HISTORY_REVERT_DISABLED = True
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

# ---------------------------------------------------------------- security
# docs/security.md maps each setting here to its requirement (ASVS 4.0.3 L2, 21 CFR Part 11).
# Passwords: Argon2id first (OWASP minimum m=19 MiB, t=2, p=1; older Argon2 hashes are upgraded at
# sign-in); length 12..128, common-password list, no composition rules.
PASSWORD_HASHERS = [
    "dcmms_release.security.Argon2idHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
# Lockout (django-axes): 5 failures for one username from one IP, lifted after a 15 min cool-off.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
# An attempt the account throttle refused before its password was checked is no axes failure.
AXES_WHITELIST_CALLABLE = "dcmms_release.account_throttle.refused_before_password"
# Account throttle (dcmms_release/account_throttle.py): failed sign-ins for one account from any
# address. After ACCOUNT_THROTTLE_FAILURES of them (no pause of ACCOUNT_THROTTLE_WINDOW seconds
# between them), each further attempt waits BASE_DELAY, twice that, … at most MAX_DELAY seconds
# (429 + Retry-After); a successful sign-in ends it; a browser that signed in to the account
# before (a signed cookie, KNOWN_BROWSER_DAYS) is not held. The delay starting is an
# account_attack audit event and a mail to SECURITY_ALERT_EMAIL (comma-separated addresses).
ACCOUNT_THROTTLE_FAILURES = env.int("ACCOUNT_THROTTLE_FAILURES", default=10)
ACCOUNT_THROTTLE_BASE_DELAY = env.float("ACCOUNT_THROTTLE_BASE_DELAY", default=1.0)
ACCOUNT_THROTTLE_MAX_DELAY = env.int("ACCOUNT_THROTTLE_MAX_DELAY", default=15 * 60)
ACCOUNT_THROTTLE_WINDOW = env.int("ACCOUNT_THROTTLE_WINDOW", default=60 * 60)
ACCOUNT_THROTTLE_KNOWN_BROWSER_DAYS = env.int("ACCOUNT_THROTTLE_KNOWN_BROWSER_DAYS", default=30)
SECURITY_ALERT_EMAIL = env.list("SECURITY_ALERT_EMAIL", default=[])
if ACCOUNT_THROTTLE_FAILURES < 1 or ACCOUNT_THROTTLE_BASE_DELAY <= 0:
    raise environ.ImproperlyConfigured(
        "ACCOUNT_THROTTLE_FAILURES must be at least 1 and ACCOUNT_THROTTLE_BASE_DELAY above 0."
    )
if ACCOUNT_THROTTLE_WINDOW <= ACCOUNT_THROTTLE_MAX_DELAY:
    raise environ.ImproperlyConfigured(
        f"ACCOUNT_THROTTLE_WINDOW={ACCOUNT_THROTTLE_WINDOW} must be longer than "
        f"ACCOUNT_THROTTLE_MAX_DELAY={ACCOUNT_THROTTLE_MAX_DELAY}: otherwise the count is "
        "forgotten between two attempts at the longest delay and the delay never holds."
    )
# Sessions: 30 min idle (renewed by each request), 12 h absolute (security.py), key cycled at login.
SESSION_COOKIE_AGE = 30 * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_ABSOLUTE_SECONDS = 12 * 60 * 60
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Rate limit: requests in any 60 seconds (a sliding window, dcmms_release/ratelimit.py) per
# signed-in user (per IP for anonymous requests).
RATE_LIMIT_PER_MINUTE = env.int("RATE_LIMIT_PER_MINUTE", default=100)
CACHES = {
    "default": env.cache("CACHE_URL", default="locmemcache://dcmms")
    if env.str("CACHE_URL", default="")
    else (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": env.str("REDIS_URL")}
        if env.str("REDIS_URL", default="")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "dcmms"}
    )
}
# A Redis cache that is down or hung costs a call at most CACHE_TIMEOUT seconds; the portal then
# serves without it (dcmms_release.cache_guard: the rate limit counts per process, logged once)
# and asks it again every CACHE_RETRY_SECONDS.
CACHE_TIMEOUT = env.float("CACHE_TIMEOUT", default=1.0)
CACHE_RETRY_SECONDS = env.float("CACHE_RETRY_SECONDS", default=10.0)
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"]["OPTIONS"] = {
        "socket_connect_timeout": CACHE_TIMEOUT,
        "socket_timeout": CACHE_TIMEOUT,
        **CACHES["default"].get("OPTIONS", {}),
    }
# Transport security: on in production (DJANGO_SECURE=true behind TLS); off by default so that
# `make run` over plain http on localhost keeps working.
DJANGO_SECURE = env.bool("DJANGO_SECURE", default=False) and not DEBUG
SECURE_SSL_REDIRECT = DJANGO_SECURE
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SESSION_COOKIE_SECURE = DJANGO_SECURE
CSRF_COOKIE_SECURE = DJANGO_SECURE
# In production the cookies carry the __Host- prefix: the browser keeps them only if they are
# secure, for path "/" and with no Domain, so a sibling (sub)domain cannot set or overwrite them.
SESSION_COOKIE_NAME = "__Host-sessionid" if DJANGO_SECURE else "sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken" if DJANGO_SECURE else "csrftoken"
SESSION_COOKIE_PATH = CSRF_COOKIE_PATH = "/"
SESSION_COOKIE_DOMAIN = CSRF_COOKIE_DOMAIN = None
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000) if DJANGO_SECURE else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = DJANGO_SECURE
SECURE_HSTS_PRELOAD = DJANGO_SECURE and env.bool("SECURE_HSTS_PRELOAD", default=True)
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content Security Policy (django-csp 4): no inline or foreign script; inline style attributes
# only (our templates use style="…"); nothing may frame the portal.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
HEALTH_BROKER_TIMEOUT = env.float("HEALTH_BROKER_TIMEOUT", default=2.0)
# /health/ answers within HEALTH_TIMEOUT seconds whatever hangs (a check still running is "fail").
HEALTH_TIMEOUT = env.float("HEALTH_TIMEOUT", default=2.0)
# Load shedding (shedding.py), per process: requests worked on at once (0 = no bound; with
# gunicorn gthread, fewer than the threads), how long one waits for a slot, how old a request
# stamped by the proxy (X-Request-Start) may be; a refused one gets 503 and Retry-After.
SHED_MAX_IN_FLIGHT = env.int("SHED_MAX_IN_FLIGHT", default=2)
SHED_QUEUE_TIMEOUT_MS = env.int("SHED_QUEUE_TIMEOUT_MS", default=1000)
SHED_MAX_QUEUE_AGE_MS = env.int("SHED_MAX_QUEUE_AGE_MS", default=2000)
SHED_RETRY_AFTER_SECONDS = env.int("SHED_RETRY_AFTER_SECONDS", default=5)


def _local_audit_chain_key(path: Path) -> tuple[str, str]:
    """The hash chain's key: from the environment in production (never in the database);
    generated once under var/ for a local checkout, like the secret key. Returns the key and
    where it came from ("file" or "generated", made atomically: one key when several processes
    start at once). A generated key is kept only while the database holds no audit chain: the
    start-up gate (dcmms_release/keys.py) removes it and refuses to start otherwise."""
    import os

    if path.exists():
        return path.read_text().strip(), "file"
    fresh = path.with_name(f".{path.name}.{os.getpid()}")
    fresh.write_text(secrets.token_hex(32))
    fresh.chmod(0o600)
    try:
        os.link(fresh, path)
        source = "generated"
    except FileExistsError:
        source = "file"
    finally:
        fresh.unlink()
    return path.read_text().strip(), source


AUDIT_CHAIN_KEY_FILE = VAR_DIR / "audit_chain_key"
AUDIT_CHAIN_KEY, AUDIT_CHAIN_KEY_SOURCE = (
    (env.str("AUDIT_CHAIN_KEY"), "environment")
    if env.str("AUDIT_CHAIN_KEY", default="")
    else _local_audit_chain_key(AUDIT_CHAIN_KEY_FILE)
)
# The chain head is appended to this file every AUDIT_ANCHOR_MINUTES (checklist.anchors): keep it
# off the database host (write-once storage); verify_audit checks the whole series.
AUDIT_ANCHOR_LOG = Path(env.str("AUDIT_ANCHOR_LOG", default=str(VAR_DIR / "audit_anchors.jsonl")))
AUDIT_ANCHOR_MINUTES = env.int("AUDIT_ANCHOR_MINUTES", default=10)
# Retention (checklist.retention, `manage.py purge_records`): a release's records and their audit
# trail are kept this many years after its final decision (or last change); never fewer than 7.
RETENTION_YEARS = env.int("RETENTION_YEARS", default=7)
if RETENTION_YEARS < 7:
    raise environ.ImproperlyConfigured(
        f"RETENTION_YEARS={RETENTION_YEARS}: compliance records are kept at least 7 years."
    )

# ---------------------------------------------------------------- celery
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _queue = VAR_DIR / "broker"
    for _sub in ("in", "processed", "control"):
        (_queue / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue / "in"),
        "data_folder_out": str(_queue / "in"),
        "processed_folder": str(_queue / "processed"),
        "control_folder": str(_queue / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
# Every call to the broker is bounded: a broker that accepts connections and never answers
# costs a request about BROKER_TIMEOUT seconds (one publish retry), then kombu's
# OperationalError, which the enqueue helper (dcmms_release.broker) logs and reports.
BROKER_TIMEOUT = env.float("BROKER_TIMEOUT", default=2.0)
CELERY_BROKER_CONNECTION_TIMEOUT = BROKER_TIMEOUT
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
BROKER_SOCKET_TIMEOUTS = {
    "socket_timeout": BROKER_TIMEOUT,
    "socket_connect_timeout": BROKER_TIMEOUT,
}
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = dict(BROKER_SOCKET_TIMEOUTS)
CELERY_REDIS_SOCKET_TIMEOUT = CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = BROKER_TIMEOUT  # results
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# ---------------------------------------------------------------- decision record seal
# The key and certificate that seal decision-record PDFs (PAdES). `manage.py ensure_signing_cert`
# (run by `make run`) creates a self-signed development pair at these paths when they are absent.
DECISION_SIGNING_KEY = env.str(
    "DECISION_SIGNING_KEY", default=str(VAR_DIR / "signing" / "record-key.pem")
)
DECISION_SIGNING_CERT = env.str(
    "DECISION_SIGNING_CERT", default=str(VAR_DIR / "signing" / "record-cert.pem")
)
# Only for a deliberate renewal: the certificate being replaced, accepted by the start-up gate
# (dcmms_release/keys.py) as the sealer of the newest record until the new one has sealed one.
DECISION_SIGNING_PREVIOUS_CERT = env.str("DECISION_SIGNING_PREVIOUS_CERT", default="")
# A record not sealed (broker down, render or seal failed, task lost) is rendered again by beat
# every DECISION_RECORD_RETRY_SECONDS once due: 2 × that after the decision, then backoff from
# that (doubling, at most an hour), DECISION_RECORD_RETRY_ATTEMPTS attempts in all
# (signoffs.record_status); after the last one a product manager retries it.
DECISION_RECORD_RETRY_SECONDS = env.int("DECISION_RECORD_RETRY_SECONDS", default=60)
DECISION_RECORD_RETRY_ATTEMPTS = env.int("DECISION_RECORD_RETRY_ATTEMPTS", default=8)
CELERY_BEAT_SCHEDULE = {
    **globals().get("CELERY_BEAT_SCHEDULE", {}),
    "decision-record-retry": {
        "task": "signoffs.retry_decision_records",
        "schedule": max(DECISION_RECORD_RETRY_SECONDS, 10),
    },
}

# ---------------------------------------------------------------- email
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="dcmms-release@localhost")
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
if env.str("EMAIL_URL", default=""):
    # e.g. smtp+tls://user:password@mail.example.com:587 sets EMAIL_HOST, EMAIL_PORT, … at once.
    vars().update(env.email_url("EMAIL_URL"))
    EMAIL_BACKEND = env.str("EMAIL_BACKEND", default=vars()["EMAIL_BACKEND"])
else:
    EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
    EMAIL_PORT = env.int("EMAIL_PORT", default=25)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
    EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
    EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
    EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)

# ---------------------------------------------------------------- reminders
# One digest per person, release and day (signoffs.reminders), sent by the one beat at
# REMINDER_HOUR o'clock in TIME_ZONE; links point at PORTAL_BASE_URL.
REMINDER_HOUR = env.int("REMINDER_HOUR", default=7)
REMINDER_ESCALATE_OVERDUE_DAYS = env.int("REMINDER_ESCALATE_OVERDUE_DAYS", default=2)
REMINDER_ESCALATE_SIGNOFF_DAYS = env.int("REMINDER_ESCALATE_SIGNOFF_DAYS", default=3)
REMINDER_SEND_FOR_STATUSES = env.list("REMINDER_SEND_FOR_STATUSES", default=["in_review"])
REMINDER_CHANGES_SHOWN = env.int("REMINDER_CHANGES_SHOWN", default=20)
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# A digest still "claimed" REMINDER_CLAIM_STALE_MINUTES after its claim (its worker died before
# the send was recorded) is claimed again and sent by beat's sweep every REMINDER_SWEEP_MINUTES
# (signoffs.reminder_recovery). Keep the stale limit well above EMAIL_TIMEOUT.
REMINDER_CLAIM_STALE_MINUTES = env.int("REMINDER_CLAIM_STALE_MINUTES", default=10)
REMINDER_SWEEP_MINUTES = env.int("REMINDER_SWEEP_MINUTES", default=5)
CELERY_BEAT_SCHEDULE = {
    **globals().get("CELERY_BEAT_SCHEDULE", {}),
    "send-daily-reminders": {
        "task": "signoffs.send_daily_reminders",
        "schedule": crontab(hour=REMINDER_HOUR, minute=0),
    },
    "retry-stuck-reminders": {
        "task": "signoffs.retry_stuck_reminders",
        "schedule": max(REMINDER_SWEEP_MINUTES, 1) * 60,
    },
    # checklist.anchors: the chain head to the anchor log outside the database
    "audit-chain-anchor": {
        "task": "checklist.chain_anchor",
        "schedule": AUDIT_ANCHOR_MINUTES * 60,
    },
}

# ---------------------------------------------------------------- separation of duties
# signoffs.gates: one person holds one signing role per release, and the release's owner and
# product managers hold none ("prevent approval by author"), unless these allow it.
SIGNOFF_ALLOW_MULTIPLE_ROLES = env.bool("SIGNOFF_ALLOW_MULTIPLE_ROLES", default=False)
SIGNOFF_ALLOW_AUTHOR_APPROVAL = env.bool("SIGNOFF_ALLOW_AUTHOR_APPROVAL", default=False)

# ---------------------------------------------------------------- import limits
CHECKLIST_IMPORT_MAX_BYTES = env.int("CHECKLIST_IMPORT_MAX_BYTES", default=2 * 1024 * 1024)
CHECKLIST_IMPORT_MAX_DEPTH = env.int("CHECKLIST_IMPORT_MAX_DEPTH", default=6)
# Counted while the file is read (checklist.importers.ImportLimits): the first line past a bound
# is refused before the rest is parsed. Far above a real checklist (the seed has 434 items).
CHECKLIST_IMPORT_MAX_ITEMS = env.int("CHECKLIST_IMPORT_MAX_ITEMS", default=20_000)
CHECKLIST_IMPORT_MAX_SECTIONS = env.int("CHECKLIST_IMPORT_MAX_SECTIONS", default=1_000)
CHECKLIST_IMPORT_MAX_CRITERIA = env.int("CHECKLIST_IMPORT_MAX_CRITERIA", default=1_000)
CHECKLIST_IMPORT_MAX_TABLE_ROWS = env.int("CHECKLIST_IMPORT_MAX_TABLE_ROWS", default=10_000)
# The admin import page hands a file past either size to the worker and shows its progress
# (signoffs.import_jobs); the worker writes the progress under CHECKLIST_IMPORT_JOB_DIR.
CHECKLIST_IMPORT_ASYNC_ITEMS = env.int("CHECKLIST_IMPORT_ASYNC_ITEMS", default=2_000)
CHECKLIST_IMPORT_ASYNC_BYTES = env.int("CHECKLIST_IMPORT_ASYNC_BYTES", default=256 * 1024)
CHECKLIST_IMPORT_JOB_DIR = Path(
    env.str("CHECKLIST_IMPORT_JOB_DIR", default=str(VAR_DIR / "imports"))
)

# ---------------------------------------------------------------- logging
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
