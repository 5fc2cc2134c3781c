"""Customers across tools: one workspace customer, its record in every connected tool.

A workspace customer links its company in each PSA connection, its RMM organization and its
documentation company. Links come from, in order of authority:

1. **config** (``[[workspaces.customers]]`` with ``refs``): always wins. A record named there
   belongs to that customer only, and automatic matching never adds a second record of a
   connection the customer names (so a configured ref *overrides* what matching would pick);
   ``exclude`` keeps named records off the customer;
2. **integration ids**: a record that carries another tool's id for itself (a Hudu company
   lists its NinjaOne organization, ``{"ninjaone": "7"}``) is joined to the record that owns
   that id (the NinjaOne organization whose own id is 7). Ids are keyed by vendor name; an id
   two connections of one vendor could own is ambiguous and skipped;
3. **normalised name**: case, punctuation and legal suffixes do not count ("ACME Corp." =
   "Acme Corporation" = "acme"). A name two records of one connection share is ambiguous and
   skipped for that connection.

Matching never puts two records of one connection on one customer and never joins two
configured customers. Every link says how it was made (``matched_by``, ``evidence``).

The map is computed from every tool's customer list (``gateway_customer_list``) and cached in
Redis under ``customers:{workspace}:{config digest}`` for ``customer_map_seconds`` (30 s when a
tool failed to answer, so it heals quickly); ``refresh`` recomputes it at once.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

import msgspec

from gateway import keys
from gateway.cache import ReadThrough
from gateway.models import Alert, Capability, Customer, RunbookLink, VendorKind, split_ref
from gateway.settings import CustomerLink, WorkspaceConfig

if TYPE_CHECKING:
    from gateway.hub import Hub

MatchedBy = Literal["config", "integration_id", "name", "unmatched"]

# A map computed while a tool was failing is kept only this long.
ERROR_TTL_SECONDS = 30.0
RUNBOOK_TTL_SECONDS = 120
_KIND_ORDER = {VendorKind.PSA: 0, VendorKind.RMM: 1, VendorKind.DOCS: 2}


# --------------------------------------------------------------------------- the model


class CustomerRecord(msgspec.Struct, omit_defaults=True):
    """A workspace customer's record in one tool, and how the link was made."""

    connection: str
    vendor: str
    kind: VendorKind
    ref: str
    name: str
    matched_by: MatchedBy
    # Why: the config entry, the integration id that matched, or the normalised name.
    evidence: str = ""
    # False for a configured ref the tool did not list (deleted, or the tool did not answer).
    found: bool = True

    @property
    def vendor_id(self) -> str:
        return split_ref(self.ref)[1]


class WorkspaceCustomer(msgspec.Struct, omit_defaults=True):
    """One customer of the workspace with its records across tools."""

    id: str
    name: str
    links: list[CustomerRecord]
    configured: bool = False

    def links_of(self, kind: VendorKind) -> list[CustomerRecord]:
        return [link for link in self.links if link.kind == kind]

    def link_on(self, connection_id: str) -> CustomerRecord | None:
        return next((link for link in self.links if link.connection == connection_id), None)


class CustomerMap(msgspec.Struct):
    """Every customer of a workspace, when the map was computed, and tools that failed."""

    workspace: str
    customers: list[WorkspaceCustomer]
    computed_at: datetime
    errors: dict[str, str] = {}

    def get(self, customer_id: str) -> WorkspaceCustomer | None:
        return next((c for c in self.customers if c.id == customer_id), None)

    def of_ref(self, ref: str) -> WorkspaceCustomer | None:
        """The customer one tool's record (``cw-main:250``) belongs to."""
        return next((c for c in self.customers if any(link.ref == ref for link in c.links)), None)


@dataclass
class Source:
    """One connection's customer list, as the matcher takes it."""

    connection: str
    vendor: str
    kind: VendorKind
    customers: list[Customer]


# --------------------------------------------------------------------------- names


_LEGAL_SUFFIXES = frozenset({
    "inc", "incorporated", "ltd", "limited", "llc", "llp", "lp", "plc", "corp", "corporation",
    "co", "company", "gmbh", "ag", "sa", "sas", "sarl", "bv", "nv", "pty", "pte", "srl", "oy", "ab", "as",
})  # fmt: skip


def normalise_name(name: str) -> str:
    """The part of a company name that identifies it: accents, case, punctuation, a leading
    "the" and trailing legal forms dropped (``"The ACME Corp., Inc."`` -> ``"acme"``)."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()
    text = text.replace("&", " and ")
    words = re.sub(r"[^a-z0-9]+", " ", text).split()
    if words and words[0] == "the":
        words = words[1:]
    while len(words) > 1 and words[-1] in _LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


def slug(name: str) -> str:
    """A customer id from a name: lower-case letters, digits and ``-``."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:60] or "customer"


def _owns(vendor: str, key: str) -> bool:
    """Whether an integration id key names the vendor's own id (``connectwise``,
    ``connectwise_identifier``) rather than another tool's."""
    return key == vendor or key.startswith(vendor + "_")


# --------------------------------------------------------------------------- matching


class _Groups:
    """Union-find over records and configured customers, refusing joins that break a rule."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.records: dict[str, list[str]] = {}
        self.connections: dict[str, set[str]] = {}
        self.config: dict[str, CustomerLink | None] = {}
        self.excluded: dict[str, set[str]] = {}

    def add(self, node: str, *, record: str | None = None, connections: Iterable[str] = (),
            config: CustomerLink | None = None) -> None:  # fmt: skip
        self.parent[node] = node
        self.records[node] = [record] if record else []
        self.connections[node] = set(connections)
        self.config[node] = config
        self.excluded[node] = set(config.exclude) if config else set()

    def find(self, node: str) -> str:
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def can_join(self, a: str, b: str) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        if self.config[ra] and self.config[rb]:
            return False
        if self.connections[ra] & self.connections[rb]:
            return False
        if self.excluded[ra] and not self.excluded[ra].isdisjoint(self.records[rb]):
            return False
        if self.excluded[rb] and not self.excluded[rb].isdisjoint(self.records[ra]):
            return False
        return True

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.config[rb] and not self.config[ra]:
            ra, rb = rb, ra  # the configured customer's node stays the root
        self.parent[rb] = ra
        self.records[ra] += self.records.pop(rb)
        self.connections[ra] |= self.connections.pop(rb)
        self.config[ra] = self.config[ra] or self.config.pop(rb)
        self.excluded[ra] |= self.excluded.pop(rb)

    def roots(self) -> list[str]:
        return [node for node in self.parent if self.find(node) == node]


def match_customers(
    config: Sequence[CustomerLink],
    sources: Sequence[Source],
    vendors: Mapping[str, tuple[str, VendorKind]] | None = None,
) -> list[WorkspaceCustomer]:
    """The workspace's customers from configured links and every tool's customer list.

    ``vendors`` (connection -> vendor and kind) names the tool of a configured ref whose
    connection gave no list. Pure: the same input always gives the same customers and ids.
    """
    records: dict[str, tuple[Source, Customer]] = {}
    for source in sources:
        for customer in source.customers:
            records.setdefault(customer.ref, (source, customer))
    order = {ref: index for index, ref in enumerate(records)}
    groups = _Groups()
    for ref, (source, _) in records.items():
        groups.add(ref, record=ref, connections=[source.connection])
    how: dict[str, tuple[MatchedBy, str]] = {}

    # 1. config: joined unconditionally (settings already refused a record given twice).
    for link in config:
        node = f"config:{link.id}"
        groups.add(node, connections=[split_ref(r)[0] for r in link.refs], config=link)
        for ref in link.refs:
            how[ref] = ("config", f"workspaces.customers {link.id!r}")
            if ref in records:
                groups.join(node, ref)

    # 2. integration ids: a foreign id joins the one record that owns it.
    owners: dict[tuple[str, str], list[str]] = {}
    for ref, (source, customer) in records.items():
        for key, value in customer.integration_ids.items():
            if _owns(source.vendor, key):
                owners.setdefault((key, str(value)), []).append(ref)
    for ref, (source, customer) in records.items():
        for key, value in sorted(customer.integration_ids.items()):
            if _owns(source.vendor, key):
                continue
            targets = [t for t in owners.get((key, str(value)), []) if records[t][0].connection != source.connection]
            if len(targets) != 1 or not groups.can_join(ref, targets[0]):
                continue
            groups.join(ref, targets[0])
            evidence = f"{ref} lists {key} id {value}"
            how.setdefault(ref, ("integration_id", evidence))
            how.setdefault(targets[0], ("integration_id", evidence))

    # 3. names: configured customers first, then records in source order.
    buckets: dict[str, list[str]] = {}
    for link in config:
        buckets.setdefault(normalise_name(link.name), []).append(f"config:{link.id}")
    for ref, (_, customer) in records.items():
        buckets.setdefault(normalise_name(customer.name), []).append(ref)
    for name, nodes in buckets.items():
        if not name:
            continue
        per_connection: dict[str, int] = {}
        for node in nodes:
            if node in records:
                per_connection[records[node][0].connection] = per_connection.get(records[node][0].connection, 0) + 1
        usable = [n for n in nodes if n not in records or per_connection[records[n][0].connection] == 1]
        for node in usable[1:]:
            anchor = next((u for u in usable if groups.find(u) != groups.find(node) and groups.can_join(u, node)), None)
            if anchor is None:
                continue
            groups.join(anchor, node)
            for member in (anchor, node):
                if member in records:
                    how.setdefault(member, ("name", f"normalised name {name!r}"))

    known = dict(vendors or {})
    known.update({s.connection: (s.vendor, s.kind) for s in sources})
    return _customers(groups, records, order, how, known)


def _customers(groups: _Groups, records: dict[str, tuple[Source, Customer]], order: dict[str, int],
               how: dict[str, tuple[MatchedBy, str]],
               known: Mapping[str, tuple[str, VendorKind]]) -> list[WorkspaceCustomer]:  # fmt: skip
    def rank(ref: str) -> tuple[int, int]:
        return _KIND_ORDER.get(records[ref][0].kind, 9), order[ref]

    built: list[tuple[str, WorkspaceCustomer | None, list[CustomerRecord]]] = []
    for root in groups.roots():
        members = sorted(groups.records[root], key=rank)
        link = groups.config[root]
        links = [_record(ref, records, how) for ref in members]
        if link is not None:
            for ref in link.refs:
                if ref in records:
                    continue
                connection = split_ref(ref)[0]
                vendor, kind = known.get(connection, ("", VendorKind.PSA))
                links.append(CustomerRecord(connection=connection, vendor=vendor, kind=kind, ref=ref, name="",
                                            matched_by="config", evidence=f"workspaces.customers {link.id!r}",
                                            found=False))  # fmt: skip
            links.sort(key=lambda r: (_KIND_ORDER.get(r.kind, 9), order.get(r.ref, len(order))))
            built.append((link.id, WorkspaceCustomer(link.id, link.name, links, configured=True), links))
        elif members:
            built.append(("", None, links))
    taken = {cid for cid, customer, _ in built if customer is not None}
    customers = [c for _, c, _ in built if c is not None]
    automatic = sorted(((_name_of(links), links) for _, c, links in built if c is None), key=lambda n: (slug(n[0]), n[1][0].ref))
    for name, links in automatic:
        if len(links) == 1:
            links[0].matched_by = "unmatched"
            links[0].evidence = ""
        base = slug(name)
        customer_id, n = base, 2
        while customer_id in taken:
            customer_id, n = f"{base}-{n}", n + 1
        taken.add(customer_id)
        customers.append(WorkspaceCustomer(customer_id, name, links))
    return sorted(customers, key=lambda c: (c.name.casefold(), c.id))


def _name_of(links: list[CustomerRecord]) -> str:
    """The name most of the customer's tools use (ties: the first PSA's, then RMM's, docs')."""
    counts: dict[str, int] = {}
    for link in links:
        counts[link.name] = counts.get(link.name, 0) + 1
    return max(links, key=lambda link: counts[link.name]).name


def _record(ref: str, records: dict[str, tuple[Source, Customer]], how: dict[str, tuple[MatchedBy, str]]) -> CustomerRecord:
    source, customer = records[ref]
    matched_by, evidence = how.get(ref, ("unmatched", ""))
    return CustomerRecord(
        connection=source.connection, vendor=source.vendor, kind=source.kind, ref=ref, name=customer.name,
        matched_by=matched_by, evidence=evidence,
    )


# --------------------------------------------------------------------------- the cached map

# One process computes a workspace's map; the others wait briefly for its answer instead of
# asking every tool.
MAPS = ReadThrough(CustomerMap, 0, single_flight=(60, 10))
RUNBOOKS = ReadThrough(list[RunbookLink], RUNBOOK_TTL_SECONDS)


def _key(workspace: WorkspaceConfig) -> str:
    basis = msgspec.json.encode(
        {"customers": workspace.customers, "connections": [(c.id, c.vendor) for c in workspace.connections]}
    )
    return keys.cache(workspace.id, "customers", hashlib.sha256(basis).hexdigest()[:16])


def _sources(gw: Hub, workspace_id: str) -> tuple[list[Source], dict[str, str]]:
    sources: list[Source] = []
    errors: dict[str, str] = {}
    for conn in gw.connections.values():
        if conn.workspace != workspace_id or not gw.vendors.has(conn.vendor, Capability.CUSTOMER_READ):
            continue
        try:
            listed = gw.vendor(conn.id).customer_list() or []
        except Exception as exc:  # one tool down must not hide the others' customers
            errors[conn.id] = gw.redactor.scrub(str(exc) or type(exc).__name__)
            continue
        sources.append(Source(conn.id, conn.vendor, gw.vendors.info(conn.vendor).kind, list(listed)))
    return sources, errors


def customer_map(gw: Hub, workspace_id: str, *, refresh: bool = False) -> CustomerMap:
    """The workspace's customers across tools (cached; ``refresh`` recomputes)."""
    workspace = gw.settings.workspace(workspace_id)
    if workspace is None:
        return CustomerMap(workspace_id, [], datetime.now(timezone.utc))

    def compute() -> CustomerMap:
        sources, errors = _sources(gw, workspace_id)
        vendors = {
            c.id: (c.vendor, gw.vendors.info(c.vendor).kind) for c in gw.connections.values() if c.workspace == workspace_id
        }
        customers = match_customers(workspace.customers, sources, vendors)
        return CustomerMap(workspace_id, customers, datetime.now(timezone.utc), errors)

    def ttl(computed: CustomerMap) -> float:
        # A map missing a tool that failed is recomputed soon.
        seconds = workspace.customer_map_seconds
        return seconds if not computed.errors else min(seconds, ERROR_TTL_SECONDS)

    found = MAPS.get(gw.redis, _key(workspace), compute, refresh=refresh, ttl=ttl)
    assert found is not None  # compute always answers
    return found


def expires_in(gw: Hub, workspace_id: str) -> float | None:
    """Seconds until the cached map is recomputed, or ``None`` when none is cached."""
    workspace = gw.settings.workspace(workspace_id)
    if workspace is None:
        return None
    ttl = gw.redis.pttl(_key(workspace))
    return round(ttl / 1000, 3) if ttl and ttl > 0 else None


def customer_of(gw: Hub, workspace_id: str, ref: str) -> WorkspaceCustomer | None:
    """The workspace customer that one tool's record (a PSA company ref) belongs to."""
    return customer_map(gw, workspace_id).of_ref(ref)


def company_refs(gw: Hub, workspace_id: str, customer_id: str) -> list[str] | None:
    """The PSA company references of a workspace customer (what its tickets carry as
    ``customer.ref``), or ``None`` when the workspace has no such customer."""
    found = customer_map(gw, workspace_id).get(customer_id)
    return None if found is None else [link.ref for link in found.links_of(VendorKind.PSA)]


# --------------------------------------------------------------------------- what a customer has


@dataclass
class Gathered:
    """Records read from several tools for one customer, and the tools that failed."""

    items: list = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def runbooks(gw: Hub, customer: WorkspaceCustomer) -> Gathered:
    """The customer's runbooks in each linked documentation tool, with their URLs (cached
    two minutes per company: Hudu counts calls in 5-minute windows)."""
    out = Gathered()
    for link in customer.links_of(VendorKind.DOCS):
        if not link.found or not gw.capable(link.connection, Capability.RUNBOOK):
            continue
        key = keys.cache(gw.connection(link.connection).workspace, "runbooks", link.ref)
        try:
            found = RUNBOOKS.get(gw.redis, key, lambda: list(
                gw.vendor(link.connection).runbook_list(customer_id=link.vendor_id) or []))
        except Exception as exc:
            out.errors[link.connection] = gw.redactor.scrub(str(exc) or type(exc).__name__)
            continue
        out.items += found or []
    return out


def alerts(gw: Hub, customer: WorkspaceCustomer) -> Gathered:
    """The customer's active alerts in each linked RMM organization."""
    out = Gathered()
    for link in customer.links_of(VendorKind.RMM):
        if not link.found or not gw.capable(link.connection, Capability.ALERT_READ):
            continue
        try:
            found: list[Alert] = list(gw.vendor(link.connection).alert_list(customer_id=link.vendor_id) or [])
        except Exception as exc:
            out.errors[link.connection] = gw.redactor.scrub(str(exc) or type(exc).__name__)
            continue
        out.items += found
    return out
