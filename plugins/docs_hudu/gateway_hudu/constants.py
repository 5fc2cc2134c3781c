"""Hudu API v1 facts the plugin relies on, each with where it comes from.

Sources (see README.md for the full notes):
- spec: ``hudu_api_v1_swagger__v2.44.0.json`` (Hudu 2.44.0, Swagger 2.0, basePath ``/api/v1``).
- contract: ``RMM_DOCS_CONTRACTS.md`` section 2 (Hudu).
"""

from __future__ import annotations

from gateway.models import INT64_ID, RateLimitPolicy, RateLimitWindow

VENDOR = "hudu"
# Hudu's record ids are whole numbers: references with any other id are 404 without a call.
ID_SHAPE = INT64_ID
TITLE = "Hudu"

# spec basePath; the connection's base_url is the instance root (https://docs.example.com).
API_PATH = "/api/v1"
# spec securityDefinitions.APIKeyHeader.
API_KEY_HEADER = "x-api-key"
# The secret setting holding the key.
API_KEY_SETTING = "api_key"

# spec info.description: "All responses are paginated with 25 results per page".
PAGE_SIZE = 25
# A guard against a server that keeps answering full pages forever (25 * 4000 = 100,000 rows).
MAX_PAGES = 4000

# spec info.description: "The API supports up to 300 requests per minute".
REQUESTS_PER_MINUTE = 300
# Hudu enforces it with Rack::Attack in 5-minute windows that reset on the 5-minute boundary
# (lwhitelock/HuduAPI PR #65, issue #66); 1,500 per 5 minutes is the per-minute figure
# spread over one window (contract 2.3).
RATE_WINDOW_SECONDS = 300
REQUESTS_PER_WINDOW = 1500
# Seconds added after the boundary before calling again, so a slightly fast clock on our side
# does not land in the window that is ending.
WINDOW_MARGIN_SECONDS = 2.0

DEFAULT_RATE_LIMIT = RateLimitPolicy(
    windows=(
        RateLimitWindow(requests=REQUESTS_PER_MINUTE, per_seconds=60.0),
        RateLimitWindow(requests=REQUESTS_PER_WINDOW, per_seconds=float(RATE_WINDOW_SECONDS)),
    ),
    # One API budget per Hudu instance is shared with other tools (sync jobs, scripts).
    headroom=0.9,
)

# Hudu integration slugs (n8n-nodes-hudu INTEGRATION_SLUGS; a company integration's
# ``integrator_name``) mapped to gateway vendor names, the keys of Customer.integration_ids.
DEFAULT_INTEGRATION_VENDORS: dict[str, str] = {
    "ninja": "ninjaone",
    # Not seen as slugs, but harmless should an instance report the product name instead.
    "ninjaone": "ninjaone",
    "ninjarmm": "ninjaone",
    "atera": "atera",
    "cw_manage": "connectwise",
    "autotask": "autotask",
    "halo": "halopsa",
}
