"""Every bound and pattern of a workflow definition, defined once."""

from __future__ import annotations

import re
from collections.abc import Mapping

from app.workflows.enums import ActionType

# --- Bounds --------------------------------------------------------------

MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 2_000
MAX_VERSION = 2_147_483_647  # the database column is a 32-bit integer
MAX_NODES = 200
MAX_EDGES = 500
MAX_ID_LENGTH = 64
MAX_COORDINATE = 1_000_000.0
MAX_CONDITIONS = 20
MAX_CONDITION_VALUE_LENGTH = 500
MAX_AGE_THRESHOLD_MINUTES = 43_200  # 30 days
MAX_DELAY_MINUTES = 10_080  # 7 days
MAX_ONCE_PER_MINUTES = 43_200  # 30 days
MAX_RETRY_ATTEMPTS = 10
MIN_INITIAL_DELAY_MS = 100
MAX_INITIAL_DELAY_MS = 300_000
MAX_TEMPLATE_LENGTH = 10_000
MAX_BODY_LENGTH = 100_000
MAX_URL_LENGTH = 2_048
MAX_HEADERS = 50
MAX_CUSTOM_HEADERS = 20
MAX_HEADER_NAME_LENGTH = 100
MAX_LABELS = 20
MAX_LABEL_LENGTH = 255
MAX_SHORT_TEXT_LENGTH = 200
# Whole-input budgets, checked before any field is validated.
MAX_DEFINITION_TEXT = 500_000  # characters in all strings and keys together
MAX_DEFINITION_JSON_LENGTH = 4_000_000  # characters (or bytes) of JSON text
MAX_DEFINITION_DEPTH = 16  # nested objects/lists; a valid definition needs 7
MAX_DEFINITION_ITEMS = 50_000  # values of any kind

TEMPLATE_ROOTS = ("incident", "assignee", "team", "workflow", "steps", "secrets", "failure")
MAX_FAILED_WORKFLOWS = 50
MAX_MIN_FAILURES = 1_000

#: Secrets that Jira and Linear actions read without naming them in a template.
IMPLICIT_SECRETS: Mapping[ActionType, tuple[str, ...]] = {
    ActionType.JIRA: ("jira_base_url", "jira_email", "jira_api_token"),
    ActionType.LINEAR: ("linear_api_key",),
}

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
SECRET_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
SECRET_REFERENCE_PATTERN = r"^\{\{\s*secrets\.([a-z][a-z0-9_]{0,63})\s*\}\}$"
HEADER_NAME_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$"
PROJECT_KEY_PATTERN = r"^[A-Z][A-Z0-9_]{1,9}$"
UUID_PATTERN = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
CONDITION_FIELD_PATTERN = r"^(priority|status|service|team|metadata\.[A-Za-z0-9_-]{1,100})$"
LABEL_PATTERN = r"^\S{1,255}$"

ID_RE = re.compile(ID_PATTERN)
SECRET_NAME_RE = re.compile(SECRET_NAME_PATTERN)
SECRET_REFERENCE_RE = re.compile(SECRET_REFERENCE_PATTERN)
HEADER_NAME_RE = re.compile(HEADER_NAME_PATTERN)
PROJECT_KEY_RE = re.compile(PROJECT_KEY_PATTERN)
UUID_RE = re.compile(UUID_PATTERN)
CONDITION_FIELD_RE = re.compile(CONDITION_FIELD_PATTERN)
LABEL_RE = re.compile(LABEL_PATTERN)
HOST_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
    r"|\[[0-9A-Fa-f:.]{2,45}\])"
    r"(?::([0-9]{1,5}))?"
)
SCHEME_RE = re.compile(r"https?://", re.IGNORECASE)
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

# Set by the HTTP client from the request itself, or carried by `auth`.
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})

CREDENTIAL_MESSAGE = (
    "Credentials are not stored in a definition. Save the value as a workflow "
    "secret and enter {{ secrets.<name> }} here."
)


Loc = tuple[str | int, ...]

#: Working time allowed per run (delays excluded), by the value a definition stores.
RUN_TIMEOUTS_MS: Mapping[str, int] = {"1min": 60_000, "5min": 300_000, "15min": 900_000}

#: The operations of the Jira and Linear actions (absent in a config: "create").
JIRA_OPERATIONS = ("create", "transition", "comment")
LINEAR_OPERATIONS = ("create", "update")
