"""Template Vendor's fixed names, paths and limits, and the plugin's defaults.

Replace each value with the vendor's published one and say where it comes from (the README
keeps the sources). The generated values describe the generated simulator.
"""

from __future__ import annotations

from gateway.models import RateLimitPolicy, RateLimitWindow

VENDOR = "templatevendor"
TITLE = "Template Vendor"

# Every API path hangs off the connection's base_url plus this prefix.
API_PREFIX = "/api/v1"
# The header carrying the API key, and the secret setting that holds it.
API_KEY_HEADER = "X-API-Key"
API_KEY_SETTING = "api_key"

# Lists answer {"items": [...], "next_page": 2 | null}; pages are 1-based.
PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
# A guard against a server that keeps answering full pages forever.
MAX_PAGES = 1000

# The vendor's published request budget (rolling windows; add more windows if it has several).
DEFAULT_RATE_LIMIT = RateLimitPolicy(windows=(RateLimitWindow(requests=10, per_seconds=1.0),))

# Where a device opens in the vendor's console (joined to the settings' web_url).
DEVICE_PAGE = "/devices/{device_id}"
