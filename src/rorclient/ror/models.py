"""Values the ROR web-service client takes and returns, besides the CSD models of :mod:`rorclient.models`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, SkipValidation

__all__ = [
    "DownloadResult",
    "HttpHandler",
    "HttpRequest",
    "HttpResponse",
    "NotifEntry",
    "Timeouts",
    "VihfProfile",
    "VihfSettings",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Timeouts(_Frozen):
    """Network time limits, in seconds (``None`` = no limit).

    ``connect``, ``read``, ``write`` and ``pool`` bound each network step (``read`` is the longest silence
    allowed while receiving). ``total`` bounds one SOAP exchange from sending to the last byte of the
    answer, so a server trickling bytes cannot hold a call forever; retries get their own budget from
    :class:`~rorclient.ror.RetryPolicy`. Downloads are bounded by ``read`` only: they may take hours.
    PLATINES expects a ROR to answer within 5 s (RG_ALIM_024) and gives up after 30 s.
    """

    connect: float | None = Field(default=10.0, gt=0)
    read: float | None = Field(default=30.0, gt=0)
    write: float | None = Field(default=30.0, gt=0)
    pool: float | None = Field(default=30.0, gt=0)
    total: float | None = Field(default=60.0, gt=0)


class NotifEntry(_Frozen):
    """One establishment listed by Notif (``csd:etablissementReponseNotif``)."""

    establishment_id: str
    """idNat_Struct of the establishment (Entité Géographique) whose offer changed."""
    id_authority: str | None = None
    """``assigningAuthorityName`` of the identifier (``1.2.250.1.71.4.2.2`` for idNat_Struct)."""
    activity_fields: tuple[str, ...] = ()
    """Codes of the activity fields (TRE_R227 champ d'activité) the server lists for it."""
    restricted: bool | None = None
    """The ``restrictedOrganisation`` flag of the answer (meaning not specified by ANS)."""


class DownloadResult(_Frozen):
    """What :meth:`~rorclient.ror.RorClient.download_extraction` wrote."""

    path: Path
    """The complete file (renamed from ``<dest>.part`` once complete and flushed to disk)."""
    bytes: int
    """Size of the file."""
    bytes_transferred: int
    """Bytes received by this call: less than ``bytes`` when an earlier partial download was resumed."""
    resumed: bool
    """Whether bytes of an earlier, interrupted download were kept."""
    restarts: int = 0
    """How often the download started over because the server's file changed (new ETag)."""
    etag: str | None = None
    compressed: Literal["gzip", "zip"] | None = None
    """Compression detected from the file's first bytes; the file is kept as downloaded."""
    url: str
    """The URL downloaded, without user-info or query string."""


VihfProfile = Literal["CU18", "CU19", "CU20", "CU21", "CU22", "CU23"]
"""Access profile codes of JDV_J68-ProfilAccesReferentiel-ROR (PLATINES profiles 0-3 = CU23, CU22, CU20,
CU19)."""


class VihfSettings(_Frozen):
    """An unsigned VIHF SAML 2.0 assertion sent in ``wsse:Security``, as PLATINES sends it (digest §9.2).

    Off unless given to :class:`~rorclient.ror.RorClient`. ``issuer`` defaults to the client certificate's
    subject DN. Whether a given ROR requires this token is to be confirmed with its operator.
    """

    profile: VihfProfile
    """User profile code (``Profil_Utilisateur``), e.g. ``CU22`` "Régulation de soins non programmés"."""
    role: str = "AUTOMATE"
    """Role code (TRE_R... role métier, code system 1.2.250.1.213.1.1.4.6)."""
    role_display: str = "Automate"
    issuer: str | None = None
    """SAML Issuer (X509SubjectName); default: the client certificate's subject DN."""
    name_id: str | None = None
    """``Subject/NameID``; default: the issuer."""
    subject_id: str = "rorclient"
    """``subject-id`` attribute: the name of the calling system."""
    resource_urn: str = "urn:ROR"
    platines_xsi_namespace: bool = False
    """Spell the ``xsi`` namespace as PLATINES does (``http://wwww.w3.org/...``, four w) for servers that
    turn out to depend on it."""


class HttpRequest(_Frozen):
    """A request as a :data:`HttpHandler` sees it: header names in lower case, the body read."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes


class HttpResponse(BaseModel):
    """What a :data:`HttpHandler` answers: a status, headers and a body, given whole (``content``) or
    as chunks (``chunks``, an iterable read as the client reads the body). Raising ``TimeoutError``
    from the chunks simulates a read timeout, any other ``OSError`` a body cut short."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    status: int = 200
    headers: dict[str, str] = Field(default_factory=dict)
    content: bytes = b""
    # Not validated: pydantic would wrap the iterable in a one-shot iterator, and a saved response
    # answered twice would then have an empty body the second time.
    chunks: SkipValidation[Iterable[bytes]] | None = None


HttpHandler: TypeAlias = Callable[[HttpRequest], HttpResponse]
"""Answers the requests of a :class:`~rorclient.ror.RorClient` in-process instead of the network (tests,
demonstrations, recorded answers). Raising ``TimeoutError`` simulates a timeout, any other ``OSError``
(``ConnectionRefusedError``...) a connection failure; any other exception is a bug of the handler and
reaches the caller as it is. Concurrent reads call it from several threads at once. Socket timeouts do
not apply in-process (``Timeouts.total`` does)."""
