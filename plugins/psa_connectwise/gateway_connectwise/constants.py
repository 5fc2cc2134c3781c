"""ConnectWise's fixed names, limits and the plugin's defaults (sources in the README)."""

from __future__ import annotations

import hashlib

from gateway.models import INT32_ID, RateLimitPolicy, RateLimitWindow

VENDOR = "connectwise"
# ConnectWise ids are int32 (spec: ``id`` ``format: int32``): references with any other id are 404 without a call.
ID_SHAPE = INT32_ID
TITLE = "ConnectWise PSA"

# The API root is https://{site}/{codebase}/apis/3.0; the codebase comes from companyinfo.
API_SUFFIX = "/apis/3.0"
COMPANY_INFO_PATH = "/login/companyinfo/{company_id}"
DEFAULT_CODEBASE = "v4_6_release/"
# Codebases move with ConnectWise releases, so a discovered one is asked for again after this.
CODEBASE_TTL_SECONDS = 3600

# Navigable paging: 1-based ``page``; ``pageSize`` defaults to 25 and is capped at 1000.
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000

# ConnectWise publishes no request budget; this stays well under what busy integrations use.
DEFAULT_RATE_LIMIT = RateLimitPolicy(windows=(RateLimitWindow(requests=10, per_seconds=1.0),))
ATTACHMENT_CAP_BYTES = 10 * 1024 * 1024

# Record names in the API.
CHARGE_TO_TICKET = "ServiceTicket"
DOCUMENT_RECORD_TYPE = "Ticket"
BILLABLE = "Billable"
NOT_BILLABLE = "DoNotBill"

# Ticket.summary and Ticket.externalXRef are at most 100 characters (2017 Service API spec).
SUMMARY_MAX = 100
EXTERNAL_REF_MAX = 100

# A note found by reconcile may carry a ConnectWise clock a little behind ours.
RECONCILE_SKEW_SECONDS = 60

# The ticket page in the web UI (the link ConnectWise itself puts in ticket e-mails).
TICKET_PAGE_PATH = "/services/system_io/Service/fv_sr100_request.rails"

# Callback signatures: base64(HMAC-SHA256(key=SHA256(signing_key), raw body)).
SIGNATURE_HEADER = "x-content-signature"


def external_ref(dedup_key: str) -> str:
    """The ``externalXRef`` a created ticket carries for ``dedup_key``.

    The key itself when it fits the field's 100 characters, else a digest of it that does.
    """
    if len(dedup_key) <= EXTERNAL_REF_MAX:
        return dedup_key
    return "sha256:" + hashlib.sha256(dedup_key.encode()).hexdigest()
