"""HaloPSA plugin for the MSP integration gateway (vendor name ``halopsa``).

``hooks`` holds the gateway hooks, ``client`` the Halo API client, ``auth`` the shared OAuth
token, ``simulator`` a Halo API simulator for tests and the demo. See README.md.
"""

__version__ = "0.1.0"
