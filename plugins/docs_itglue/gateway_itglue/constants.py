"""IT Glue API facts the plugin relies on, each with where it comes from.

Sources (README.md has the full notes):
- docs: IT Glue's developer page, https://api.itglue.com/developer (a crawl of 2025-08-18 is
  stored as santy18/work_workspace ``developer-d6f93dfbd4.md``).
- contract: ``/work/shared/vendor-api/RMM_DOCS_CONTRACTS.md`` section 3 (IT Glue).
"""

from __future__ import annotations

from gateway.models import INT64_ID, RateLimitPolicy, RateLimitWindow

VENDOR = "itglue"
# IT Glue's record ids are numeric strings: references with any other id are 404 without a call.
ID_SHAPE = INT64_ID
TITLE = "IT Glue"

# docs "Authentication/Request Headers": every request carries ``x-api-key``.
API_KEY_HEADER = "x-api-key"
# The secret setting holding the key (``ITG.xxxx``).
API_KEY_SETTING = "api_key"
# docs: "Content-Type: application/vnd.api+json" (JSON:API's media type, jsonapi.org).
MEDIA_TYPE = "application/vnd.api+json"

# docs "The base URL for all endpoints": one host per data center; paths start at the root.
REGION_HOSTS: dict[str, str] = {
    "us": "https://api.itglue.com",
    "eu": "https://api.eu.itglue.com",
    "au": "https://api.au.itglue.com",
}
ITGLUE_DOMAIN = "itglue.com"

# IT Glue's own default page is 50 rows (Celerium.ITGlue ``Get-ITGlueOrganization`` help:
# "Returns the first 50"); the docs cap a page at 1000. One team reported organizations
# capped at 100 a page (Databranch "ITGlue API Lessons Learned"), so 100 is the safe default.
PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# A guard against a server that keeps announcing a next page (1000 * 1000 rows).
MAX_PAGES = 1000

# docs "Rate Limiting": "a maximum of 3000 requests within a 5-minute window. A 429 Too Many
# Requests error code will be returned" (tightened around July 2025: Liongard support article
# 12745919, contract section 3).
REQUESTS_PER_WINDOW = 3000
RATE_WINDOW_SECONDS = 300.0
# The docs say nothing about Retry-After. When a 429 comes without one, wait this long: the
# gateway's own limiter keeps us under 3,000 per 5 minutes, so a 429 means another tool on the
# same account spent the budget, and a minute lets part of the window drain.
RETRY_AFTER_FALLBACK_SECONDS = 60.0

DEFAULT_RATE_LIMIT = RateLimitPolicy(
    windows=(RateLimitWindow(requests=REQUESTS_PER_WINDOW, per_seconds=RATE_WINDOW_SECONDS),),
    # The budget belongs to the IT Glue account, shared with its PSA/RMM syncs and scripts.
    headroom=0.9,
)

# docs Organizations ``filter[psa_integration_type]``: "manage, autotask, tigerpaw, kaseya-bms,
# pulseway-psa, vorex", mapped to this gateway's vendor names (Customer.integration_ids keys).
DEFAULT_PSA_VENDORS: dict[str, str] = {
    "manage": "connectwise",
    "autotask": "autotask",
}
