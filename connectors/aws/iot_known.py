"""What never changes about an IoT certificate (its PEM, validity, CA link), kept per process so a
collection need not describe a certificate it already knows: the certificate revoke just
registered in a reissue, or one an earlier collection in this process described.

Kept only when the certificate id is the PEM's own fingerprint (IoT names a certificate by the
SHA-256 of its DER; some emulators hash the PEM text): an entry can only ever describe the
certificate of that id, whichever account, region or run reads it. Status, ARN and creation date
always come from the live listing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

from connectors.aws.iot import registered_id_candidates

IMMUTABLE = ("certificatePem", "validity", "caCertificateId")


class KnownCertificates:
    def __init__(self, limit: int = 20_000) -> None:
        self._known: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def put(self, cert_id: str, pem: str, *, validity: dict[str, datetime] | None = None,
            ca_id: str | None = None) -> None:
        """Keep a certificate's PEM (and validity, CA id when known); `validity` defaults to the
        certificate's own dates, which is what IoT reports for it."""
        try:
            if not pem or cert_id not in registered_id_candidates(pem):
                return
            if validity is None:
                from connectors.pki import load_pem

                cert = load_pem(pem)
                validity = {"notBefore": cert.not_valid_before_utc, "notAfter": cert.not_valid_after_utc}
        except ValueError:
            return
        entry: dict[str, Any] = {"certificatePem": pem, "validity": validity}
        if ca_id:
            entry["caCertificateId"] = ca_id
        with self._lock:
            self._known[cert_id] = entry
            self._known.move_to_end(cert_id)
            while len(self._known) > self._limit:
                self._known.popitem(last=False)

    def forget_all(self) -> None:
        with self._lock:
            self._known.clear()

    def remember(self, description: dict[str, Any]) -> None:
        """Keep what a DescribeCertificate answer says that cannot change."""
        self.put(str(description.get("certificateId", "")), str(description.get("certificatePem", "")),
                 validity=description.get("validity") or None, ca_id=description.get("caCertificateId"))

    def description(self, listed: dict[str, Any]) -> dict[str, Any] | None:
        """A listing entry completed with what is known of it; None when nothing is."""
        with self._lock:
            entry = self._known.get(str(listed.get("certificateId", "")))
        if entry is None:
            return None
        out = {k: v for k, v in listed.items() if v is not None}
        return {**out, **entry}


KNOWN = KnownCertificates()
