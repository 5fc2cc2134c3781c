"""Facts about the Halo API (v2, ``/api``) that the client, the hooks and the simulator share.

Sources are named in ``README.md``; ``[U]`` marks what no public source settles.
"""

from __future__ import annotations

from gateway.models import Capability, INT32_ID, RateLimitPolicy, RateLimitWindow

VENDOR = "halopsa"
# Halo ids are int32 (spec: ``id`` ``format: int32``): references with any other id are 404 without a call.
ID_SHAPE = INT32_ID
TITLE = "HaloPSA"

API_PREFIX = "/api"
AUTHINFO_PATH = "/api/authinfo"
TOKEN_SUFFIX = "/token"  # appended to the discovered ``auth_url``

# "page_size ... Maximum size: 100" (spec); the server silently returns at most 100 items
# whatever is asked (homotechsual/HaloAPI#90), so paging is computed from what came back.
MAX_PAGE_SIZE = 100

# Hosted Halo: "Rate Limit Reached - 300 Requests per rolling 5 minute window" (HTTP 429).
RATE_LIMIT_REQUESTS = 300
RATE_LIMIT_SECONDS = 300.0
DEFAULT_RATE_LIMIT = RateLimitPolicy(windows=(RateLimitWindow(RATE_LIMIT_REQUESTS, RATE_LIMIT_SECONDS),))

# The product's per-connection default; no public Halo source states a cap [U].
ATTACHMENT_CAP_BYTES = 25 * 1024 * 1024

CAPABILITIES = frozenset(
    {
        Capability.TICKET_READ,
        Capability.REPLY,
        Capability.INTERNAL_NOTE,
        Capability.REPLY_WITH_STATUS,
        Capability.STATUS,
        Capability.CREATE_TICKET,
        Capability.TIME_ENTRY,
        Capability.ATTACHMENT,
        Capability.WEBHOOK,
        Capability.CUSTOMER_READ,
    }
)

# Action outcome labels from the contract's examples; tenants can rename them (settings).
OUTCOME_PUBLIC_REPLY = "Email User"
OUTCOME_PRIVATE_NOTE = "Private Note"

# The shared token (``gateway.oauth``, under ``plugin:{connection}:token``) is dropped this long
# before Halo's ``expires_in`` (at most a tenth of it), so it is replaced before Halo refuses it.
TOKEN_REFRESH_MARGIN = 60.0

# How far before a vendor timestamp we still accept an effect as ours (clock skew between
# the gateway and Halo).
RECONCILE_SKEW_SECONDS = 120.0

# Provisional webhook signature (no public source documents Halo's signed payload).
WEBHOOK_SIGNATURE_HEADER = "x-halo-signature"
WEBHOOK_SIGNATURE_PREFIX = "sha256="
