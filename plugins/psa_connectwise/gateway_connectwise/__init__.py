"""ConnectWise PSA (ConnectWise Manage, REST API 3.0) for the MSP integration gateway.

Modules, one reason to change each:

- ``constants``: the vendor's fixed names, limits and defaults.
- ``records``: the connection settings and the ConnectWise records the plugin reads.
- ``auth``: the ``httpx.Auth`` that signs every call (Basic ``company+public:private`` and
  the ``clientId`` header).
- ``errors``: reading ConnectWise's error body into the gateway's error messages.
- ``conditions``: the ``conditions=`` query language (building it, and parsing it for the
  simulator).
- ``client``: ``ConnectWiseClient``, one small method per API resource, over ``VendorHTTP``.
- ``mapping``: ConnectWise records to the gateway's canonical models.
- ``webhooks``: verifying and reading ConnectWise callbacks.
- ``reconcile``: finding the effect of a write whose outcome is unknown.
- ``hooks``: the pluggy hook implementations (the entry point).
- ``detail``: a ticket's time entries and documents read back, and a document's download
  (hook implementations re-exported by ``hooks``).
- ``simulator``: a package: ``ConnectWiseSimulator`` (``app``), the API over loopback HTTP for
  tests and the demo, with its records, protocol (errors, lists, ``Link``), callbacks and seed.
"""

__version__ = "0.1.0"
