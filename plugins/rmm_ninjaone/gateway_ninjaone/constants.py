"""NinjaOne facts the plugin builds on, each with where it comes from.

Contract: ``shared/vendor-api/RMM_DOCS_CONTRACTS.md`` section 1 and the NinjaOne Public API 2.0
OpenAPI file (``specs/ninjaone_public_api_v2__NinjaRMM-API-v2.json``).
"""

from __future__ import annotations

from gateway.models import UUID_PATTERN, IdShape, RateLimitPolicy, RateLimitWindow

VENDOR = "ninjaone"
# Devices and organizations have int32 ids, alerts UUID uids (spec): anything else is 404.
ID_SHAPE = IdShape.numeric(2**31 - 1, or_pattern=UUID_PATTERN)
TITLE = "NinjaOne"

# -- OAuth2 (authorization-server metadata, specs/ninjaone_oauth_authorization_server...json)
TOKEN_PATH = "/ws/oauth/token"
# ``monitoring`` reads; ``management`` is the tag of the reset endpoints in the spec.
DEFAULT_SCOPE = "monitoring management"
# Refresh this long before ``expires_in`` runs out (at most a tenth of the lifetime); the
# token itself is shared through ``gateway.oauth``.
TOKEN_REFRESH_MARGIN = 120.0

# -- API v2 paths (spec operationIds in brackets)
ORGANIZATIONS = "/v2/organizations"  # getOrganizations: pageSize + after=<last id>
DEVICE = "/v2/device/{id}"  # getDevice: detailed; agents add ``system.serialNumber``
DEVICE_SEARCH = "/v2/devices/search"  # search: q + limit, matches names
COMPUTER_SYSTEMS = "/v2/queries/computer-systems"  # getComputerSystems: serials, cursor paging
ALERTS = "/v2/alerts"  # getAlerts: every active alert, not paged; ``df`` filters
ALERT = "/v2/alert/{uid}"  # resetAlert (DELETE): 204, the only state change an alert has

# Bare-array lists page with pageSize + after; the spec sets no maximum, 1000 is used in the field.
PAGE_SIZE = 1000
# A loop guard for cursor paging: no tenant needs more pages than this for one lookup.
MAX_PAGES = 200
SEARCH_LIMIT = 50

# -- the console a human opens (RMM_DOCS_CONTRACTS.md 1.7, seen in 10+ public integrations)
DEVICE_DASHBOARD = "{web}/#/deviceDashboard/{id}/overview"


# NinjaOne publishes no rate limit for API v2 (no 429 in the spec, no headers). 100 calls a
# minute is the client-side budget of wyre-technology/node-ninjaone; 429 + Retry-After from the
# vendor still pauses the connection through VendorHTTP.
DEFAULT_RATE_LIMIT = RateLimitPolicy(windows=(RateLimitWindow(requests=100, per_seconds=60.0),))
