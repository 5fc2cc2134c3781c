"""MSP integration gateway: one ticket queue over every PSA, exactly-once write-back."""

import sys

# httpx imports its command-line tool (``httpx._main``) whenever the tool's packages are
# installed, and Litestar installs them: rich, pygments and click, about 4.5 MB in every API
# and worker process, which use httpx only as a client. A process that imports the gateway
# before httpx leaves that module out; ``httpx.main`` then asks for httpx[cli], as it does
# wherever those packages are missing. (A process that imported httpx first keeps its tool.)
sys.modules.setdefault("httpx._main", None)  # type: ignore[assignment]

from gateway.hookspecs import hookimpl  # noqa: E402

__all__ = ["hookimpl"]
__version__ = "0.1.0"
