"""Atera facts the plugin builds on, each with where it comes from.

Contract: ``shared/vendor-api/RMM_DOCS_CONTRACTS.md`` section 4 and Atera's OpenAPI file
("Welcome to the Atera API" v3, ``specs/atera_api_v3_openapi__PSAtera.yaml``, a copy of the
token-gated ``https://app.atera.com/apidocs`` spec kept in davejlong/PSAtera).
"""

from __future__ import annotations

from gateway.models import INT64_ID, RateLimitPolicy, RateLimitWindow

VENDOR = "atera"
# Atera ids (agents, alerts, customers) are int64s: references with any other id are 404 without a call.
ID_SHAPE = INT64_ID
TITLE = "Atera"

# -- where the API lives (contract section 4: "Base: https://app.atera.com/api/v3", HTTPS only)
DEFAULT_BASE_URL = "https://app.atera.com/api/v3"
API_ROOT = "/api/v3"
# The console people open (Atera's own links in alert e-mails and its apps live on this host).
DEFAULT_WEB_URL = "https://app.atera.com"

# -- auth: every request carries the key in this header (Atera's sample script; the spec's
# Bearer scheme is not what the API takes, contract section 4)
API_KEY_HEADER = "X-API-KEY"
# The secret setting holding the key (read from the environment, never from config).
API_KEY_SETTING = "api_key"

# -- API v3 paths, relative to the API root (spec ``paths``)
CUSTOMERS = "customers"  # GET: CustomerDtoPagedResult
AGENTS = "agents"  # GET: AgentDtoPagedResult
AGENT = "agents/{agent_id}"  # GET: AgentDto
AGENTS_ON_MACHINE = "agents/machine/{machine_name}"  # GET: AgentDtoPagedResult
ALERTS = "alerts"  # GET: AlertDtoPagedResult, filtered by ``alertStatus``
ALERT = "alerts/{alert_id}"  # GET: AlertDto (404 ProblemDetails); PUT: "Resolve" (204, no body)

# -- paging: ``page`` (1-based) and ``itemsInPage`` (default 20, spec); the envelope is
# ``{items, page, itemsInPage, totalItemCount, totalPages, prevLink, nextLink}``
PAGE_SIZE = 50  # the size PSAtera asks for; 50 is also the cap a third-party client reports
MAX_PAGES = 1000  # a loop guard: 50,000 records is beyond any one Atera account's list
OPEN = "Open"  # AlertStatus: Open | Resolved | Snoozed

# BIOS serials that name no machine: matching on them would pick a random device.
PLACEHOLDER_SERIALS = frozenset(
    s.casefold()
    for s in (
        "To Be Filled By O.E.M.",
        "Default string",
        "System Serial Number",
        "Not Specified",
        "None",
        "0",
        "00000000",
        "0123456789",
        "123456789",
        "N/A",
    )
)

# -- the console link built when an agent has no ``AppViewUrl`` (assumed: the new console's
# device page, as public integrations open it; see README, contract question 5)
AGENT_PAGE = "{web}/new/rmm/device/{guid}/agent"

# Atera publishes no rate limit (contract section 4). 700 calls a minute circulates in
# third-party notes [UNVERIFIED]; this default stays well under it and under the lowest tier
# figure seen (400 a minute). A 429's Retry-After still pauses the connection via VendorHTTP.
DEFAULT_RATE_LIMIT = RateLimitPolicy(windows=(RateLimitWindow(requests=300, per_seconds=60.0),))
