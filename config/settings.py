"""Keyward settings, read from the environment.

Development (the default, ``DJANGO_DEBUG`` unset or true) generates its own secret key and
token pepper once and keeps them in ``.local/secrets.json`` (git-ignored). Production
(``DJANGO_DEBUG=false``) refuses to start unless every secret comes from the environment.
"""

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = BASE_DIR / ".local"

# Values that must never sign anything in production (copied from an example or a tutorial).
KNOWN_DEFAULT_SECRETS = frozenset({"", "changeme", "change-me", "secret", "insecure", "dev"})


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}.")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}.") from None


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    value = (os.environ.get(name) or default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {value!r}.")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def local_development_secrets() -> dict[str, str]:
    """Return the development secrets, creating them on first use (never used in production)."""
    path = LOCAL_DIR / "secrets.json"
    if not path.exists():
        LOCAL_DIR.mkdir(exist_ok=True)
        generated = {
            "secret_key": secrets.token_urlsafe(50),
            "token_pepper": f"dev1:{secrets.token_urlsafe(32)}",
        }
        try:
            # O_EXCL: two processes starting at once agree on the first file written.
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                json.dump(generated, handle)
    for _attempt in range(50):
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:  # another process is still writing it
            import time

            time.sleep(0.02)
    raise ImproperlyConfigured(f"{path} is not valid JSON; delete it to regenerate.")


def local_development_secret(name: str) -> str:
    """Return a development secret kept in its own file under .local/, created on first use.

    For secrets added after ``.local/secrets.json`` existed: a separate file created with
    O_EXCL, so two processes starting at once agree on one value.
    """
    path = LOCAL_DIR / name
    if not path.exists():
        LOCAL_DIR.mkdir(exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
    for _attempt in range(50):
        value = path.read_text().strip()
        if value:
            return value
        import time

        time.sleep(0.02)  # another process is still writing it
    raise ImproperlyConfigured(f"{path} is empty; delete it to regenerate.")


def parse_secret_keys(name: str, raw: str) -> list[str]:
    """Parse comma-separated keys, oldest first; each must be at least 32 random characters."""
    keys = [item.strip() for item in raw.split(",") if item.strip()]
    for key in keys:
        if len(key) < 32 or key.lower() in KNOWN_DEFAULT_SECRETS:
            raise ImproperlyConfigured(
                f"{name} holds a key shorter than 32 characters: use random values "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))')."
            )
    return keys


def parse_peppers(raw: str) -> list[tuple[str, bytes]]:
    """Parse ``id:secret,id:secret`` into (id, key) pairs, oldest first, newest last."""
    peppers: list[tuple[str, bytes]] = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        pepper_id, separator, secret = item.partition(":")
        if not separator or not pepper_id.isalnum() or len(pepper_id) > 16:
            raise ImproperlyConfigured(
                "KEYWARD_TOKEN_PEPPERS must be a comma-separated list of id:secret pairs "
                "with an alphanumeric id of at most 16 characters, e.g. 'p1:<random>'."
            )
        if len(secret) < 32 or secret.lower() in KNOWN_DEFAULT_SECRETS:
            raise ImproperlyConfigured(
                f"KEYWARD_TOKEN_PEPPERS entry {pepper_id!r} is too short: use at least 32 "
                "random characters (python -c 'import secrets; print(secrets.token_urlsafe(32))')."
            )
        peppers.append((pepper_id, secret.encode()))
    if len({pepper_id for pepper_id, _ in peppers}) != len(peppers):
        raise ImproperlyConfigured("KEYWARD_TOKEN_PEPPERS has the same id twice.")
    return peppers


DEBUG = env_bool("DJANGO_DEBUG", True)
# Production as the environment says (test runners turn DEBUG off; this stays what it was).
KEYWARD_PRODUCTION = not DEBUG

if DEBUG:
    _local = local_development_secrets()
    SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or _local["secret_key"]
    _peppers_raw = os.environ.get("KEYWARD_TOKEN_PEPPERS") or _local["token_pepper"]
else:
    SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
    if len(SECRET_KEY) < 50 or SECRET_KEY.lower() in KNOWN_DEFAULT_SECRETS:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is missing or too short: production (DJANGO_DEBUG=false) needs "
            "a random value of at least 50 characters."
        )
    _peppers_raw = os.environ.get("KEYWARD_TOKEN_PEPPERS", "")
    if not _peppers_raw.strip():
        raise ImproperlyConfigured(
            "KEYWARD_TOKEN_PEPPERS is missing: production (DJANGO_DEBUG=false) needs at least "
            "one id:secret pair to digest API tokens."
        )

# Webhook signing secrets are stored encrypted with these keys (oldest first, the last encrypts
# new ones); unlike token secrets they must be recoverable, to sign each delivery.
if DEBUG:
    _webhook_keys_raw = os.environ.get("KEYWARD_WEBHOOK_SECRET_KEYS") or local_development_secret(
        "webhook_secret_key"
    )
else:
    _webhook_keys_raw = os.environ.get("KEYWARD_WEBHOOK_SECRET_KEYS", "")
    if not _webhook_keys_raw.strip():
        raise ImproperlyConfigured(
            "KEYWARD_WEBHOOK_SECRET_KEYS is missing: production (DJANGO_DEBUG=false) needs at "
            "least one random key of 32 characters or more to encrypt webhook signing secrets."
        )
KEYWARD_WEBHOOK_SECRET_KEYS = parse_secret_keys("KEYWARD_WEBHOOK_SECRET_KEYS", _webhook_keys_raw)

KEYWARD_TOKEN_PEPPERS = parse_peppers(_peppers_raw)
if not KEYWARD_TOKEN_PEPPERS:
    raise ImproperlyConfigured("KEYWARD_TOKEN_PEPPERS holds no id:secret pair.")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]" if DEBUG else "")
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS is missing: production needs the host names Keyward is served on."
    )
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# Only the socket address counts unless a proxy is named here; a forged X-Forwarded-For from
# anyone else is ignored.
KEYWARD_TRUSTED_PROXIES = env_list("KEYWARD_TRUSTED_PROXIES")

INSTALLED_APPS = [
    "orgs.admin_app.KeywardAdminConfig",  # django.contrib.admin, every change audited
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "ninja",  # serves the API docs' Swagger UI from its bundled static files, not a CDN
    "axes",  # sign-in lockouts (orgs/lockout.py)
    "orgs",
    "people",
    "mail",
    "policies",
    "tokens",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.SecurityHeadersMiddleware",
    "config.middleware.ApiErrorShapeMiddleware",
    "config.middleware.TokenExpiryHeaderMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "orgs.middleware.HtmxLoginRedirectMiddleware",
    "orgs.middleware.HtmxMessagesMiddleware",
    "config.middleware.DatabaseUnavailableMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "orgs.console.console_permissions",
                "tokens.console.expiring_tokens_banner",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DJANGO_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers and one writer work at once (live-server tests, runserver threads);
    # IMMEDIATE makes a writing transaction take its lock up front instead of failing midway.
    # A 64 MiB page cache (2 MiB by default) and a checkpoint every 10,000 WAL pages (1,000 by
    # default: a batch of cleanup_tokens dirties more than that, so each commit checkpointed):
    # cleanup of 50,000 tokens 24,000 -> 32,000 rows/s (bench/RESULTS.md, "Round three").
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
        "PRAGMA busy_timeout=10000; PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=10000;",
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "KEYWARD_DB_PREPARED_STATEMENTS", True
):
    # The authentication query joins nine tables: PostgreSQL spends ~10 ms planning it and
    # under 1 ms running it. Server-side binding lets psycopg prepare it after five uses on a
    # connection, so it is planned once per connection. Turn off behind a transaction-pooling
    # PgBouncer older than 1.21 (prepared statements do not survive its pooling).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"server_side_binding": True, "prepare_threshold": 5}
    )
DATABASES["default"]["TEST"] = (
    {"NAME": os.environ.get("DJANGO_TEST_DATABASE_NAME")}
    if (os.environ.get("DJANGO_TEST_DATABASE_NAME"))
    else {}
)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "orgs.User"
AUTHENTICATION_BACKENDS = ["orgs.lockout.LockoutBackend", "orgs.backends.HumanUserBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Human passwords only: API tokens are 256-bit random values digested with HMAC-SHA256.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REDIS_URL = os.environ.get("REDIS_URL", "")
# How long one Redis call may take before the request goes on without it (the throttle and the
# usage counts fall back to this process's own). redis-py's default is 5 s, which made every
# request wait 5 s while Redis hung (issue 20).
KEYWARD_REDIS_TIMEOUT_SECONDS = env_float("KEYWARD_REDIS_TIMEOUT_SECONDS", 0.5)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "keyward",
            "OPTIONS": {
                "socket_timeout": KEYWARD_REDIS_TIMEOUT_SECONDS,
                "socket_connect_timeout": KEYWARD_REDIS_TIMEOUT_SECONDS,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Request bodies: the API refuses anything over 64 KiB; forms never need more.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# Headers and cookies.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 60 * 60 * 12
KEYWARD_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)
    if KEYWARD_TRUSTED_PROXIES:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

EMAIL_BACKEND = os.environ.get(
    "DJANGO_EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "keyward@localhost")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
# Seconds a mail server may take before a send fails (and the message waits for a retry).
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
# After the transaction that queued a message commits: "thread" sends it from a background
# thread at once, "inline" sends it before the request returns, "off" leaves it to
# `manage.py send_email`. Whatever fails stays queued for `send_email`.
KEYWARD_EMAIL_SEND_AFTER_COMMIT = env_choice(
    "KEYWARD_EMAIL_SEND_AFTER_COMMIT", ("thread", "inline", "off"), "thread"
)

# People. Where the console is, for links in e-mail; whether organization admins may create
# brand-new people in their organization (otherwise they invite existing ones, or addresses).
KEYWARD_CONSOLE_URL = os.environ.get("KEYWARD_CONSOLE_URL", "http://127.0.0.1:8000")
KEYWARD_ALLOW_ORG_USER_CREATION = env_bool("KEYWARD_ALLOW_ORG_USER_CREATION", False)

# Bearer authentication. A token's last use is written at most once per this many seconds
# (every other request of that token writes nothing).
KEYWARD_LAST_USE_INTERVAL_SECONDS = 60
# Last use and daily counts gathered in Redis, shared by every instance, when it is there.
KEYWARD_USAGE_REDIS_URL = REDIS_URL
# Whether each process flushes its buffered usage from a background thread (tests flush by hand).
KEYWARD_USAGE_FLUSH_THREAD = True
# Failed bearer authentications from one address within the window before it is throttled
# (its valid tokens are still served).
KEYWARD_AUTH_FAILURE_LIMIT = env_int("KEYWARD_AUTH_FAILURE_LIMIT", 100)
KEYWARD_AUTH_FAILURE_WINDOW_SECONDS = env_int("KEYWARD_AUTH_FAILURE_WINDOW_SECONDS", 600)

# Anonymous requests for the API's schema and docs pages, per address and minute.
KEYWARD_DOCS_REQUESTS_PER_MINUTE = env_int("KEYWARD_DOCS_REQUESTS_PER_MINUTE", 60)

# Leak reports (POST /api/v1/leaked-tokens). Unsigned requests per address and minute; and the
# public keys of verified reporters (scanning partners), as a JSON object of key id -> PEM,
# e.g. GitHub's secret scanning keys (docs/secret-scanning.md says how to fetch them).
KEYWARD_LEAK_REPORTS_PER_MINUTE = env_int("KEYWARD_LEAK_REPORTS_PER_MINUTE", 30)


def parse_leak_reporter_keys(raw: str) -> dict[str, str]:
    """``{"key id": "-----BEGIN PUBLIC KEY-----..."}``; each must be an EC public key."""
    if not raw.strip():
        return {}
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        keys = json.loads(raw)
    except ValueError:
        raise ImproperlyConfigured(
            "KEYWARD_LEAK_REPORTER_KEYS must be a JSON object of key id -> PEM public key."
        ) from None
    if not isinstance(keys, dict):
        raise ImproperlyConfigured(
            "KEYWARD_LEAK_REPORTER_KEYS must be a JSON object of key id -> PEM public key."
        )
    for key_id, pem in keys.items():
        try:
            key = load_pem_public_key(str(pem).encode("ascii"))
        except (ValueError, TypeError, UnicodeEncodeError):
            key = None
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ImproperlyConfigured(
                f"KEYWARD_LEAK_REPORTER_KEYS: key {key_id!r} is not a PEM ECDSA public key."
            )
    return {str(key_id): str(pem) for key_id, pem in keys.items()}


KEYWARD_LEAK_REPORTER_KEYS = parse_leak_reporter_keys(
    os.environ.get("KEYWARD_LEAK_REPORTER_KEYS", "")
)

# Console and admin sign-in lockouts (django-axes, orgs/lockout.py): failures of one account
# from one address lock that pair; failures from one address over any accounts lock the
# address. Both last the cool-off after the last failure. Counted in the database, so they hold
# with Redis down and across instances.
AXES_HANDLER = "orgs.lockout.LockoutHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env_int("KEYWARD_SIGNIN_FAILURE_LIMIT", 10)
KEYWARD_SIGNIN_ADDRESS_FAILURE_LIMIT = env_int("KEYWARD_SIGNIN_ADDRESS_FAILURE_LIMIT", 50)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("KEYWARD_SIGNIN_COOLOFF_SECONDS", 900))
AXES_CLIENT_IP_CALLABLE = "policies.addresses.lockout_address"  # IPv6: its /64
AXES_USERNAME_CALLABLE = "orgs.lockout.lockout_username"
AXES_LOCKOUT_CALLABLE = "orgs.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
# A lock ends when it said it would: failures while locked are refused, not counted.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are not kept: no table that only grows
AXES_VERBOSE = False

# Webhooks: where deliveries may go and how long one may take.
# Hosts (names or addresses) exempt from the address checks and, in production, from https:
# for receivers on your own network. Everything else must resolve to public addresses only.
KEYWARD_WEBHOOK_ALLOWED_HOSTS = env_list("KEYWARD_WEBHOOK_ALLOWED_HOSTS")
KEYWARD_WEBHOOK_TIMEOUT_SECONDS = env_float("KEYWARD_WEBHOOK_TIMEOUT_SECONDS", 5.0)
KEYWARD_WEBHOOK_HTTPS_ONLY = not DEBUG

# Where the worker writes audit exports too large to stream (KEYWARD_EXPORT_STREAM_LIMIT events
# and more); the web server reads them back to the person who asked. Shared by both.
KEYWARD_EXPORT_DIR = os.environ.get("KEYWARD_EXPORT_DIR", str(LOCAL_DIR / "exports"))
KEYWARD_EXPORT_STREAM_LIMIT = env_int("KEYWARD_EXPORT_STREAM_LIMIT", 100_000)

# Audit events older than this many days are removed by prune_audit_events (run it daily);
# unset keeps every event forever.
_audit_retention = os.environ.get("KEYWARD_AUDIT_RETENTION_DAYS", "").strip()
if _audit_retention and not (
    _audit_retention.isascii()
    and _audit_retention.isdigit()
    and 1 <= int(_audit_retention) <= 36500
):
    raise ImproperlyConfigured(
        "KEYWARD_AUDIT_RETENTION_DAYS must be a whole number of days from 1 to 36500, or unset "
        f"to keep audit events forever (got {_audit_retention!r})."
    )
KEYWARD_AUDIT_RETENTION_DAYS = int(_audit_retention) if _audit_retention else None


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "mask_tokens": {"()": "tokens.logging.MaskTokensFilter"},
        "mask_webhook_secrets": {"()": "webhooks.signing.MaskWebhookSecretsFilter"},
    },
    "formatters": {"plain": {"format": "{asctime} {levelname} {name} {message}", "style": "{"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["mask_tokens", "mask_webhook_secrets"],
            "formatter": "plain",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("KEYWARD_LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # httpx logs every webhook URL at INFO; a URL's path can be the receiver's secret.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # One warning per failed sign-in and each lockout; not its housekeeping.
        "axes": {"level": "WARNING"},
    },
}
