"""PAdES signatures on finished dossier PDFs: the actor's certificate, signing, offline checking.

This module owns the standard PDF digital signature that a prosecutor's dossier carries,
so that ordinary PDF readers show it as signed and any later change is detected.

Invariants:

- The signing key is the actor's own Ed25519 key (the one whose fingerprint the store keeps);
  the certificate is a self-signed X.509 v3 certificate for that key naming the actor and
  agency. There is no agency certificate authority, so a certificate proves nothing by
  itself: trust comes from comparing `signer_fingerprint` (lowercase hex SHA-256 of the raw
  32-byte public key, as everywhere in custody) with the key the agency publishes and the
  dossier prints.
- Signatures are PAdES baseline (`ETSI.CAdES.detached`, SHA-512 with Ed25519) and are
  added as an incremental update, so the bytes of the unsigned PDF stay untouched inside
  the signed file.
- Signing writes the output atomically: a failure leaves no partial `pdf_out`.
- Verification is offline (no network, no store) and never raises for a damaged or
  hostile file: whatever is wrong becomes a plain sentence in `problems`.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import parser as asn1_parser
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import SigFieldSpec, SigSeedSubFilter
from pyhanko.sign.general import SigningError
from pyhanko.sign.validation import (
    EmbeddedPdfSignature,
    PdfSignatureStatus,
    SignatureCoverageLevel,
    validate_pdf_signature,
)
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from custody.errors import InvalidInput, NotFound, SignatureProblem
from custody.keys import fingerprint, public_raw
from custody.timeutil import now_utc, to_utc_text

# Exceptions that pyHanko, asn1crypto and cryptography raise on malformed PDF or CMS data.
# Verification reads untrusted files, so these become problems instead of crashes.
_DAMAGED = (
    PdfError,
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
    AssertionError,
    ArithmeticError,
    RuntimeError,
)

_STAMP_TEXT = "Digitally signed by %(signer)s\nTime: %(ts)s\nKey %(key)s"
# Bottom-left corner of the last page, in points; the dossier layout keeps a margin there.
_STAMP_BOX = (36, 24, 306, 78)


@dataclass(frozen=True)
class PdfSignatureCheck:
    """What an offline check of a signed PDF found; `ok` only when nothing is wrong."""

    signed: bool
    intact: bool
    covers_whole_file: bool
    signer_name: str | None
    signer_fingerprint: str | None
    signing_time: str | None
    problems: list[str] = field(default_factory=list)
    signer_handle: str | None = None
    signer_agency: str | None = None

    @property
    def ok(self) -> bool:
        return self.signed and self.intact and self.covers_whole_file and not self.problems


def actor_certificate(
    *,
    private_key: Ed25519PrivateKey,
    name: str,
    handle: str,
    role: str,
    agency: str,
    country: str = "",
    badge: str = "",
    valid_days: int = 3650,
    issued_at: datetime | None = None,
) -> x509.Certificate:
    """A self-signed X.509 v3 certificate for an actor's Ed25519 key.

    Subject: CN = name, O = agency, C = country (only when it is a 2-letter code; other
    spellings are left out), UID and serialNumber = handle, title = role, OU = "Badge ..."
    when a badge is given. Key usage is digitalSignature + nonRepudiation (critical), with
    BasicConstraints CA:FALSE and subject/authority key identifiers.

    Self-signed because there is no agency CA: the certificate only carries the names,
    the court establishes trust by comparing the key fingerprint with the agency's
    published key. Ed25519 signing is deterministic and the serial number derives from
    the key and `issued_at`, so the same inputs give a byte-identical certificate.
    """
    start = _certificate_start(
        {"name": name, "handle": handle, "role": role, "agency": agency}, valid_days, issued_at
    )
    subject = _subject(
        name=name, handle=handle, role=role, agency=agency, country=country, badge=badge
    )
    public_key = private_key.public_key()
    seed = f"{fingerprint(public_raw(private_key))}|{start.isoformat()}".encode()
    # RFC 5280: positive, at most 20 octets; 152 bits keeps the top bit clear.
    serial = int.from_bytes(hashlib.sha256(seed).digest()[:19], "big") or 1
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(private_key, None)
    )


def root_ca_certificate(
    *, private_key: Ed25519PrivateKey, agency: str, country: str = "", valid_days: int = 3650
) -> x509.Certificate:
    """The agency root as an X.509 certificate authority (self-signed, CA:TRUE, keyCertSign):
    a PDF reader that trusts it validates dossier signatures of the actors it certified."""
    start = _certificate_start({"agency": agency}, valid_days, None)
    # X.509 bounds a common name to 64 characters.
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, f"{agency.strip()[:59]} root")]
    code = country.strip().upper()
    if len(code) == 2 and code.isascii() and code.isalpha():
        attributes.append(x509.NameAttribute(NameOID.COUNTRY_NAME, code))
    attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, agency.strip()))
    name = x509.Name(attributes)
    public_key = private_key.public_key()
    serial = int.from_bytes(hashlib.sha256(public_raw(private_key)).digest()[:19], "big") or 1
    usage = x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(private_key, None)
    )


def issued_certificate(
    *,
    public_key: Ed25519PublicKey,
    ca_key: Ed25519PrivateKey,
    ca_certificate: x509.Certificate,
    name: str,
    handle: str,
    role: str,
    agency: str,
    country: str = "",
    badge: str = "",
    valid_days: int = 3650,
) -> x509.Certificate:
    """An actor's certificate issued by the agency root as CA (same subject as
    `actor_certificate`, issuer the root's name, signed by the root key)."""
    start = _certificate_start(
        {"name": name, "handle": handle, "role": role, "agency": agency}, valid_days, None
    )
    subject = _subject(
        name=name, handle=handle, role=role, agency=agency, country=country, badge=badge
    )
    seed = f"{fingerprint(_raw_public(public_key))}|{start.isoformat()}|ca".encode()
    serial = int.from_bytes(hashlib.sha256(seed).digest()[:19], "big") or 1
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_certificate.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, None)
    )


#: Signing only: digitalSignature and nonRepudiation.
_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=True,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def _certificate_start(
    names: dict[str, str], valid_days: int, issued_at: datetime | None
) -> datetime:
    """The validity start (whole seconds), once the names and period are usable."""
    for label, value in names.items():
        if not value.strip():
            raise InvalidInput(
                f"The actor certificate needs a non-empty {label}; pass the actor's {label}."
            )
    if valid_days < 1:
        raise InvalidInput(
            f"The actor certificate validity of {valid_days} days is not positive; "
            "pass valid_days of 1 or more."
        )
    start = (issued_at or now_utc()).replace(microsecond=0)
    if start.tzinfo is None:
        raise InvalidInput(
            f"The certificate time {start.isoformat()} has no time zone; pass an aware datetime."
        )
    return start


def _subject(
    *, name: str, handle: str, role: str, agency: str, country: str, badge: str
) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, name.strip())]
    code = country.strip().upper()
    if len(code) == 2 and code.isascii() and code.isalpha():
        attributes.append(x509.NameAttribute(NameOID.COUNTRY_NAME, code))
    attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, agency.strip()))
    if badge.strip():
        attributes.append(
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"Badge {badge.strip()}")
        )
    attributes += [
        x509.NameAttribute(NameOID.TITLE, role.strip()),
        x509.NameAttribute(NameOID.USER_ID, handle.strip()),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, handle.strip()),
    ]
    return x509.Name(attributes)


def sign_pdf(
    *,
    pdf_in: Path,
    pdf_out: Path,
    private_key: Ed25519PrivateKey,
    certificate: x509.Certificate,
    reason: str,
    location: str = "",
    field_name: str = "Signature1",
    visible: bool = False,
) -> None:
    """Add a PAdES signature made with the actor's key to `pdf_in`, writing `pdf_out`.

    The signature is an incremental update (the original bytes stay as they are), with
    SHA-512 over the byte range and an Ed25519 CMS signature; `reason` and `location`
    go into the signature dictionary, the signing time into the signed attributes.
    With `visible`, a small stamp naming the signer and key goes in the bottom-left corner
    of the last page; otherwise the signature field is invisible. `pdf_out` may equal
    `pdf_in`; it is replaced atomically only once signing has succeeded.
    """
    if not pdf_in.is_file():
        raise NotFound(f"The PDF {pdf_in} does not exist; render the dossier first.")
    cert_key = certificate.public_key()
    key_raw = public_raw(private_key)
    if not isinstance(cert_key, Ed25519PublicKey) or _raw_public(cert_key) != key_raw:
        raise InvalidInput(
            f"The certificate given to sign {pdf_in} is not for this private key; "
            "make it with actor_certificate from the same key."
        )

    pdf_signer = _pdf_signer(
        private_key=private_key,
        certificate=certificate,
        reason=reason,
        location=location,
        field_name=field_name,
        visible=visible,
    )
    data = pdf_in.read_bytes()
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(data))
    except (PdfError, ValueError) as exc:
        raise InvalidInput(
            f"The file {pdf_in} is not a readable PDF ({exc}); re-render it."
        ) from None
    signed = io.BytesIO()
    try:
        pdf_signer.sign_pdf(
            writer,
            output=signed,
            appearance_text_params={"key": fingerprint(key_raw)[:16]},
        )
    except (SigningError, PdfError) as exc:
        raise SignatureProblem(
            f"Signing {pdf_in} in field {field_name} failed ({exc}); "
            "use a fresh field name or an unsigned PDF."
        ) from None
    _write_atomically(pdf_out, signed.getvalue())


def _pdf_signer(
    *,
    private_key: Ed25519PrivateKey,
    certificate: x509.Certificate,
    reason: str,
    location: str,
    field_name: str,
    visible: bool,
) -> signers.PdfSigner:
    """A PAdES signer (SHA-512, the certificate embedded once) for one signature field."""
    signing_cert = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    signing_key = asn1_keys.PrivateKeyInfo.load(
        private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signer = signers.SimpleSigner(
        signing_cert=signing_cert,
        signing_key=signing_key,
        # Empty: the signing certificate is embedded once by itself. A second copy would sit
        # in the CMS unchecked (the validator uses one), so its bytes could change unnoticed.
        cert_registry=SimpleCertificateStore(),
    )
    metadata = signers.PdfSignatureMetadata(
        field_name=field_name,
        reason=reason or None,
        location=location or None,
        subfilter=SigSeedSubFilter.PADES,
        md_algorithm="sha512",
    )
    field_spec = SigFieldSpec(field_name, on_page=-1, box=_STAMP_BOX) if visible else None
    return signers.PdfSigner(
        metadata,
        signer,
        stamp_style=TextStampStyle(stamp_text=_STAMP_TEXT),
        new_field_spec=field_spec,
    )


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise SignatureProblem(
            f"The signed PDF {path} cannot be written ({exc.strerror}); check the folder exists "
            "and is writable."
        ) from None


def verify_pdf_signature(path: Path) -> PdfSignatureCheck:
    """Check the newest signature in a PDF offline; never raises for a damaged file.

    `intact` means the CMS signature is cryptographically valid and the signed byte range
    digests to the signed value; `covers_whole_file` means that byte range reaches the end
    of the file, so nothing was appended after signing. Trust is not established by a CA:
    the signer's own certificate is the validation root, and the caller compares
    `signer_fingerprint` with the actor's registered key. Missing revocation data is not
    a problem (there is no network). Earlier signatures, if any, must still be intact.
    """
    if not path.is_file():
        raise NotFound(f"The PDF {path} does not exist; check the path.")
    data = path.read_bytes()
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        signatures = list(reader.embedded_regular_signatures)
    except _DAMAGED as exc:
        return _unsigned(f"The file {path.name} cannot be read as a PDF ({_brief(exc)}).")
    if not signatures:
        return _unsigned(f"The file {path.name} carries no PDF signature.")

    problems: list[str] = []
    for earlier in signatures[:-1]:
        try:
            status = _validate(earlier)
            if not (status.intact and status.valid):
                problems.append(
                    f"The earlier signature in field {earlier.field_name} is not intact."
                )
        except _DAMAGED as exc:
            problems.append(
                f"The earlier signature in field {earlier.field_name} cannot be checked "
                f"({_brief(exc)})."
            )
    return _check_last(signatures[-1], data=data, file_name=path.name, problems=problems)


def _check_last(
    embedded: EmbeddedPdfSignature, *, data: bytes, file_name: str, problems: list[str]
) -> PdfSignatureCheck:
    names: dict[str, str | None] = {"name": None, "handle": None, "agency": None}
    signer_fpr: str | None = None
    try:
        names, signer_fpr = _signer_identity(embedded, problems)
        status = _validate(embedded)
    except _DAMAGED as exc:
        problems.append(
            f"The signature in {file_name} cannot be checked ({_brief(exc)}); "
            "the file is damaged or was altered."
        )
        return _signed(
            names, fingerprint=signer_fpr, problems=problems, intact=False, covers=False, time=None
        )
    intact = bool(status.intact and status.valid)
    problems += _status_problems(status, embedded, data=data, file_name=file_name)
    covers = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    signing_time = to_utc_text(status.signer_reported_dt) if status.signer_reported_dt else None
    return _signed(
        names,
        fingerprint=signer_fpr,
        problems=problems,
        intact=intact,
        covers=covers,
        time=signing_time,
    )


def _status_problems(
    status: PdfSignatureStatus, embedded: EmbeddedPdfSignature, *, data: bytes, file_name: str
) -> list[str]:
    """What the validation status says is wrong, as sentences."""
    problems = []
    if not status.valid:
        problems.append(f"The signature value in {file_name} does not verify; it was altered.")
    if not status.intact:
        problems.append(
            f"The signed content of {file_name} was changed after signing; "
            "its digest no longer matches."
        )
    if not _container_is_canonical(embedded, data):
        problems.append(
            f"The signature container in {file_name} was changed outside the signature itself."
        )
    if status.intact and status.valid and not status.trusted:
        problems.append(
            f"The signing certificate in {file_name} is not valid now (expired or malformed); "
            "compare the key fingerprint with the agency's published key."
        )
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        problems.append(_coverage_problem(status, file_name))
    return problems


def _signed(
    names: dict[str, str | None],
    *,
    fingerprint: str | None,
    problems: list[str],
    intact: bool,
    covers: bool,
    time: str | None,
) -> PdfSignatureCheck:
    return PdfSignatureCheck(
        signed=True,
        intact=intact,
        covers_whole_file=covers,
        signer_name=names["name"],
        signer_fingerprint=fingerprint,
        signing_time=time,
        problems=problems,
        signer_handle=names["handle"],
        signer_agency=names["agency"],
    )


def _validate(embedded: EmbeddedPdfSignature) -> PdfSignatureStatus:
    # The certificate is self-signed by design, so it is its own root; fetching stays off
    # and revocation is not required, which keeps the check offline.
    context = ValidationContext(
        trust_roots=[embedded.signer_cert], allow_fetching=False, revocation_mode="soft-fail"
    )
    return validate_pdf_signature(embedded, context)


def _signer_identity(
    embedded: EmbeddedPdfSignature, problems: list[str]
) -> tuple[dict[str, str | None], str | None]:
    cert = x509.load_der_x509_certificate(embedded.signer_cert.dump())
    subject = cert.subject

    def first(oid: x509.ObjectIdentifier) -> str | None:
        found = subject.get_attributes_for_oid(oid)
        value = found[0].value if found else None
        return value if isinstance(value, str) else None

    names = {
        "name": first(NameOID.COMMON_NAME),
        "handle": first(NameOID.USER_ID) or first(NameOID.SERIAL_NUMBER),
        "agency": first(NameOID.ORGANIZATION_NAME),
    }
    key = cert.public_key()
    if not isinstance(key, Ed25519PublicKey):
        problems.append("The signing certificate does not hold an Ed25519 key as custody uses.")
        return names, None
    return names, fingerprint(_raw_public(key))


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )


def _container_is_canonical(embedded: EmbeddedPdfSignature, data: bytes) -> bool:
    """True when the unsigned /Contents hole is `<hex of the DER signature, zero padded>`.

    The hole is the one part of the file the byte range cannot cover, and a PDF reader
    ignores hex case, whitespace and what follows the DER value; so a changed byte there
    would pass the cryptographic check. The CMS digestAlgorithms list is not signed either,
    so it must name exactly the signer's digest, the signer identifier must repeat the
    certificate's issuer bytes, and both version numbers must be the ones RFC 5652
    prescribes. Requiring one canonical spelling makes a changed byte anywhere in the file
    visible.
    """
    try:
        start, length, end = (int(embedded.byte_range[i]) for i in range(3))
        hole = data[start + length : end]
        inner = hole[1:-1].decode("ascii")
        content = embedded.pkcs7_content
        _cls, _method, _tag, header, body, trailer = asn1_parser.parse(content, strict=False)
        signer_digest = embedded.signer_info["digest_algorithm"].dump()
        listed_digests = [algo.dump() for algo in embedded.signed_data["digest_algorithms"]]
        sid_matches = _sid_names_exactly(embedded) and _versions_as_rfc5652(embedded)
        spelled_once = inner in (inner.upper(), inner.lower()) and inner.strip() == inner
        decoded = bytes.fromhex(inner) if spelled_once and len(inner) % 2 == 0 else None
    except (*_DAMAGED, UnicodeDecodeError):
        return False
    used = len(header) + len(body) + len(trailer)
    return (
        hole[:1] == b"<"
        and hole[-1:] == b">"
        and decoded == content
        and not content[used:].strip(b"\x00")
        and listed_digests == [signer_digest]
        and sid_matches
    )


def _versions_as_rfc5652(embedded: EmbeddedPdfSignature) -> bool:
    # Both version numbers are unsigned and ignored by the validator; RFC 5652 (5.1, 5.3)
    # fixes them from the structure, so only that value is accepted.
    signed_data = embedded.signed_data
    by_key_id = embedded.signer_info["sid"].name == "subject_key_identifier"
    kinds = {cert.name for cert in signed_data["certificates"] or []}
    if "other" in kinds:
        expected = "v5"
    elif "v2_attr_cert" in kinds:
        expected = "v4"
    elif by_key_id or signed_data["encap_content_info"]["content_type"].native != "data":
        expected = "v3"
    else:
        expected = "v1"
    expected_signer = "v3" if by_key_id else "v1"
    return bool(
        signed_data["version"].native == expected
        and embedded.signer_info["version"].native == expected_signer
    )


def _sid_names_exactly(embedded: EmbeddedPdfSignature) -> bool:
    # Name matching in certificate lookup ignores case and spacing, so the unsigned signer
    # identifier must repeat the certificate's own bytes.
    sid = embedded.signer_info["sid"]
    cert = embedded.signer_cert
    if sid.name == "issuer_and_serial_number":
        ias = sid.chosen
        return bool(
            ias["issuer"].dump() == cert.issuer.dump()
            and ias["serial_number"].native == cert.serial_number
        )
    return bool(sid.chosen.native == cert.key_identifier)


def _coverage_problem(status: PdfSignatureStatus, file_name: str) -> str:
    if status.coverage == SignatureCoverageLevel.ENTIRE_REVISION:
        level = status.modification_level
        if level is None or level == ModificationLevel.OTHER:
            kind = "changes that may alter what was signed"
        elif level == ModificationLevel.NONE:
            kind = "no content changes"
        else:
            kind = f"{level.name.lower().replace('_', ' ')} changes"
        return (
            f"Data was appended to {file_name} after it was signed ({kind}); "
            "the signed revision is intact but the file is not the one that was signed."
        )
    return (
        f"The signature in {file_name} does not cover the whole file; "
        "bytes outside the signed range were added or changed."
    )


def _unsigned(problem: str) -> PdfSignatureCheck:
    return PdfSignatureCheck(
        signed=False,
        intact=False,
        covers_whole_file=False,
        signer_name=None,
        signer_fingerprint=None,
        signing_time=None,
        problems=[problem],
    )


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."
