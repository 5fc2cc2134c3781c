"""Autotask facts the plugin and its simulator share (sources in the plugin README)."""

from __future__ import annotations

import hashlib

from gateway.models import INT64_ID

VENDOR = "autotask"
# Autotask ids are int64s: references with any other id are 404 without a call.
ID_SHAPE = INT64_ID
TITLE = "Autotask PSA"

# Zone discovery lives on the shared host; every other call goes to the zone it names.
DISCOVERY_URL = "https://webservices.autotask.net"
API_PREFIX = "/atservicesrest"
API_VERSION = "v1.0"
ZONE_CACHE_SECONDS = 24 * 3600

# Autotask refuses credentials with an HTTP 500 and an ``errors`` body, not a 401: an unknown
# UserName and a valid user with an unknown ApiIntegrationCode are 500s (apigrate/
# autotask-restapi#19); zoneInformation for an unknown user is a 500 "Zone information could not
# be determined" (KelvinTegelaar/AutotaskAPI#17, #76); py-autotask reads both texts below as an
# authentication error. Only a wrong Secret for a known user is a 401.
ZONE_UNKNOWN_USER = "Zone information could not be determined"
INTEGRATION_CODE_INVALID = "IntegrationCode is invalid."
# [U] the text of the unknown-UserName 500 is not published; the simulator answers this one.
USERNAME_INVALID = "UserName is invalid."
AUTH_FAILURE_MESSAGES = (ZONE_UNKNOWN_USER, "IntegrationCode is invalid", "UserName is invalid")

# Query pages hold at most 500 records ("MaxRecords" 1..500).
MAX_PAGE = 500
# Queries go as GET ?search= (they are reads) unless the encoded filter is longer than this;
# then as POST with the JSON body. IIS's default query-string limit is 2,048 characters.
MAX_SEARCH_PARAM = 1800
# Guard against a server that hands back a cycle of nextPageUrls.
MAX_PAGES = 1000

# Autotask counts 10,000 calls an hour per database, across every integration; latency is
# added from 50 % usage. The gateway keeps to half of it (headroom 0.5).
HOURLY_THRESHOLD = 10_000
HEADROOM = 0.5
# Three threads per tracking identifier and object endpoint.
THREAD_LIMIT = 3

# Per-file attachment limit through the API ("6 to 7 MB"), and the byte budget per 5 minutes.
ATTACHMENT_CAP_BYTES = 6 * 1024 * 1024
ATTACHMENT_WINDOW_BYTES = 10_000_000
ATTACHMENT_WINDOW_SECONDS = 300

# TicketNotes.publish: 1 is "All Autotask Users" (the official sample's value; shown in the
# outsourced copy and the client portal). "Internal Only" is believed to be 2: configurable.
PUBLISH_ALL_USERS = 1
PUBLISH_INTERNAL_ONLY = 2
# TicketNotes.noteType used for notes we create (the official sample uses 1).
DEFAULT_NOTE_TYPE = 1
NOTE_TITLE_MAX = 250

# Tickets.externalID holds our dedup key; longer keys are hashed to fit.
EXTERNAL_ID_MAX = 50

# Status labels (as in a default install) and the canonical category they fall in; every
# other status is "in_progress". Labels are compared case-insensitively.
STATUS_LABEL_CATEGORIES = {
    "new": "new",
    "complete": "closed",
    "waiting customer": "awaiting_customer",
}

# Tickets fields the gateway fills itself, kept out of the new-ticket form.
FORM_EXCLUDED_FIELDS = frozenset({"id", "title", "description", "externalid"})

WEBHOOK_SIGNATURE_HEADER = "x-hook-signature"


def external_id_for(dedup_key: str) -> str:
    """The ``externalID`` stored on a ticket created under ``dedup_key`` (hashed if too long)."""
    if len(dedup_key) <= EXTERNAL_ID_MAX:
        return dedup_key
    return "gw-" + hashlib.sha1(dedup_key.encode()).hexdigest()
