"""IT Glue (IT documentation) for the MSP integration gateway: organizations as customers,
documents as their runbooks, each with the link that opens it in IT Glue.

Modules, one reason to change each:

- ``constants``: the vendor's fixed names, paths, limits and the plugin's defaults.
- ``settings``: the connection's ``settings`` table as a msgspec Struct.
- ``auth``: the ``httpx.Auth`` for the vendor's scheme (an API key header here).
- ``errors``: reading the vendor's error body into the gateway's error messages.
- ``mapping``: the vendor's records as Structs, and their translation to canonical models.
- ``client``: ``ITGlueClient``, one small method per vendor resource, over ``VendorHTTP``.
- ``hooks``: the pluggy hook implementations (the ``msp_gateway`` entry point).
- ``simulator``: ``ITGlueSimulator``, the vendor's API over loopback HTTP for tests and
  the demo (the ``msp_gateway.simulators`` entry point).
"""

__version__ = "0.1.0"
