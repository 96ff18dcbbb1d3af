"""``ClientOptions``: how a :class:`~rorclient.ror.RorClient` talks to its ROR, in one frozen object.

The endpoints and the credentials (who the client is) are the client's own arguments; everything else
(trust, time limits, retries, request details, local limits, the in-process handler) is here, with
defaults fit for a production ROR, so that ``RorClient(soap_url, credentials=...)`` is enough::

    from rorclient.ror import ClientOptions, RetryPolicy, RorClient, Timeouts
    from rorclient.tls import Credentials

    options = ClientOptions(ca_bundle="/etc/app/igc-sante-chain.pem", retry=RetryPolicy(max_attempts=2))
    with RorClient(
        "https://ror.example.org/ROR/0.1/CSD_ROR_Binding",
        credentials=Credentials.load("/etc/app/ror.p12", password_env="ROR_CERT_PASSWORD"),
        options=options,
    ) as ror:
        ...

Change one field of a copy with ``options.model_copy(update={"retry": RetryPolicy.no_retry()})``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from rorclient.codes import Oid
from rorclient.ror._retry import RetryPolicy
from rorclient.ror.models import HttpHandler, Timeouts, VihfSettings

__all__ = ["DEFAULT_MAX_DOWNLOAD_BYTES", "DEFAULT_UNIT_ID_AUTHORITY", "ClientOptions"]

#: Authority sent with a unit's identifiantOI in a Lecture OI request: the real OID is not published
#: (digest §7.3); this matches what rorclient's CSD writer emits.
DEFAULT_UNIT_ID_AUTHORITY = "identifiantOI"
#: Default cap on a download (``max_download_bytes``): far above a national extraction (about 1 GB).
DEFAULT_MAX_DOWNLOAD_BYTES = 16 * 1024**3


class ClientOptions(BaseModel):
    """Everything about a :class:`~rorclient.ror.RorClient` but its endpoints and credentials; frozen,
    every field has a default."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    ca_bundle: Path | None = None
    """The CA chain the server's certificate must chain to (IGC-Santé). ``None``: the bundle the
    credentials were loaded with, else the system's CAs."""
    timeouts: Timeouts = Field(default_factory=Timeouts)
    """Network time limits (:class:`~rorclient.ror.Timeouts`)."""
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    """How failed calls are repeated (:class:`~rorclient.ror.RetryPolicy`)."""
    max_concurrency: int = Field(default=16, ge=1)
    """Requests in flight at once, and pooled connections."""
    vihf: VihfSettings | None = None
    """Send a VIHF SAML token with every SOAP call (off by default)."""
    wsdl: Path | None = None
    """Build requests from another WSDL, e.g. the official ``ROR-v2.4.wsdl`` (default: rorclient's)."""
    schema_dir: Path | None = None
    """Where the WSDL's remote schemas are read from (default: the WSDL's directory; never downloaded)."""
    establishment_id_authority: str = Oid.STRUCTURE_ID_TYPE
    """``assigningAuthorityName`` sent with an idNat_Struct in Lecture (as PLATINES)."""
    unit_id_authority: str = DEFAULT_UNIT_ID_AUTHORITY
    """The same for a unit's identifiantOI."""
    cache_dir: Path | None = None
    """Where :meth:`~rorclient.ror.RorClient.load_file` puts downloaded files (default: the user cache)."""
    allow_insecure_http: bool = False
    """Accept ``http://`` endpoints (a local test server only: warned about at each start)."""
    max_download_bytes: int = Field(default=DEFAULT_MAX_DOWNLOAD_BYTES, ge=1)
    """The largest download accepted, in bytes (default 16 GiB)."""
    handler: HttpHandler | None = None
    """Answer every request in this process instead of the network (tests, demonstrations; see
    :data:`~rorclient.ror.HttpHandler`)."""
