"""Hudu (IT documentation) plugin for the MSP integration gateway.

Reads Hudu companies as customers (with the ids they carry in linked PSA/RMM integrations,
so a NinjaOne organization can be matched to its Hudu company) and Hudu knowledge-base
articles as the customer's runbooks, each with the link that opens it in Hudu.
"""

__version__ = "0.1.0"
