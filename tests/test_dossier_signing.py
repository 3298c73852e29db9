"""PAdES signing of dossier PDFs and the offline check of the signature."""

from __future__ import annotations

import io
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtensionOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pypdf import PdfReader
from reportlab.pdfgen import canvas

from custody.dossier.signing import actor_certificate, sign_pdf, verify_pdf_signature
from custody.errors import InvalidInput, NotFound, SignatureProblem
from custody.keys import fingerprint, public_raw

TEXT = "Evidence dossier C-12 pangolin scales"


def make_pdf(path: Path, *, pages: int = 2) -> Path:
    # Uncompressed so a test can find and change the page text inside the signed bytes.
    pdf = canvas.Canvas(str(path), pageCompression=0)
    for number in range(1, pages + 1):
        pdf.drawString(72, 720, f"{TEXT} page {number}")
        pdf.showPage()
    pdf.save()
    return path


def make_cert(key: Ed25519PrivateKey, **overrides: object) -> x509.Certificate:
    values: dict[str, object] = {
        "name": "José Núñez",
        "handle": "jnunez",
        "role": "prosecutor",
        "agency": "Wildlife Crime Unit",
        "country": "ke",
        "badge": "4471",
    }
    values.update(overrides)
    return actor_certificate(private_key=key, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def signed_pdf(tmp_path_factory: pytest.TempPathFactory, key: Ed25519PrivateKey) -> Path:
    folder = tmp_path_factory.mktemp("signed")
    out = folder / "dossier.signed.pdf"
    sign_pdf(
        pdf_in=make_pdf(folder / "dossier.pdf"),
        pdf_out=out,
        private_key=key,
        certificate=make_cert(key),
        reason="Evidence dossier issued to the court",
        location="Nairobi",
    )
    return out


def copy_with(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "copy.pdf"
    path.write_bytes(data)
    return path


def test_certificate_names_actor_and_agency(key: Ed25519PrivateKey) -> None:
    issued = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    cert = make_cert(key, issued_at=issued)
    subject = cert.subject

    def value(oid: x509.ObjectIdentifier) -> object:
        return subject.get_attributes_for_oid(oid)[0].value

    assert value(NameOID.COMMON_NAME) == "José Núñez"
    assert value(NameOID.ORGANIZATION_NAME) == "Wildlife Crime Unit"
    assert value(NameOID.COUNTRY_NAME) == "KE"
    assert value(NameOID.USER_ID) == "jnunez"
    assert value(NameOID.SERIAL_NUMBER) == "jnunez"
    assert value(NameOID.TITLE) == "prosecutor"
    assert value(NameOID.ORGANIZATIONAL_UNIT_NAME) == "Badge 4471"
    assert cert.issuer == cert.subject
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    assert not usage.value.key_cert_sign
    cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    cert.verify_directly_issued_by(cert)
    # Same key, names and time give the same certificate, byte for byte.
    assert make_cert(key, issued_at=issued) == cert


def test_certificate_leaves_out_a_country_that_is_not_a_code(key: Ed25519PrivateKey) -> None:
    cert = make_cert(key, country="Kenya", badge="")
    assert not cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
    assert not cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)


def test_certificate_refuses_blank_name(key: Ed25519PrivateKey) -> None:
    with pytest.raises(InvalidInput, match="non-empty name"):
        make_cert(key, name="  ")


def test_signed_pdf_verifies(signed_pdf: Path, key: Ed25519PrivateKey) -> None:
    check = verify_pdf_signature(signed_pdf)
    assert check.problems == []
    assert check.ok
    assert check.signed and check.intact and check.covers_whole_file
    assert check.signer_name == "José Núñez"
    assert check.signer_handle == "jnunez"
    assert check.signer_agency == "Wildlife Crime Unit"
    assert check.signer_fingerprint == fingerprint(public_raw(key))
    assert check.signing_time is not None and check.signing_time.endswith("Z")


def test_signed_pdf_still_reads_as_text(signed_pdf: Path) -> None:
    reader = PdfReader(signed_pdf)
    assert len(reader.pages) == 2
    assert TEXT in (reader.pages[0].extract_text() or "")
    fields = reader.get_fields() or {}
    assert fields["Signature1"].get("/FT") == "/Sig"


def test_changed_byte_in_signed_content_is_not_intact(tmp_path: Path, signed_pdf: Path) -> None:
    data = bytearray(signed_pdf.read_bytes())
    at = data.index(b"pangolin")
    data[at] = ord("P")
    check = verify_pdf_signature(copy_with(tmp_path, bytes(data)))
    assert check.signed
    assert not check.intact
    assert not check.ok
    assert any("changed after signing" in p for p in check.problems)


def test_changed_padding_in_signature_container_is_reported(
    tmp_path: Path, signed_pdf: Path
) -> None:
    data = bytearray(signed_pdf.read_bytes())
    contents_end = data.index(b">", data.index(b"/Contents <"))
    data[contents_end - 1] = ord("1")
    check = verify_pdf_signature(copy_with(tmp_path, bytes(data)))
    assert not check.ok
    assert any("outside the signature" in p for p in check.problems)


def test_appended_garbage_is_not_covered(tmp_path: Path, signed_pdf: Path) -> None:
    check = verify_pdf_signature(copy_with(tmp_path, signed_pdf.read_bytes() + b"\n% extra\n"))
    assert check.signed and check.intact
    assert not check.covers_whole_file
    assert not check.ok


def test_incremental_update_after_signing_is_not_covered(tmp_path: Path, signed_pdf: Path) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(signed_pdf.read_bytes()))
    writer.root["/Lang"] = generic.TextStringObject("fr")
    writer.update_root()
    updated = io.BytesIO()
    writer.write(updated)
    check = verify_pdf_signature(copy_with(tmp_path, updated.getvalue()))
    assert check.signed and check.intact
    assert not check.covers_whole_file
    assert any("appended" in p for p in check.problems)


def test_unsigned_pdf_is_reported(tmp_path: Path) -> None:
    check = verify_pdf_signature(make_pdf(tmp_path / "plain.pdf"))
    assert not check.signed and not check.intact and not check.ok
    assert check.signer_fingerprint is None
    assert check.problems == ["The file plain.pdf carries no PDF signature."]


@pytest.mark.parametrize("keep", [0, 40, 0.5, 0.97])
def test_truncated_file_is_a_problem_not_a_crash(
    tmp_path: Path, signed_pdf: Path, keep: float
) -> None:
    data = signed_pdf.read_bytes()
    size = int(len(data) * keep) if isinstance(keep, float) else keep
    check = verify_pdf_signature(copy_with(tmp_path, data[:size]))
    assert not check.ok
    assert check.problems


def test_signing_in_place_and_a_second_signature(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    pdf = make_pdf(tmp_path / "dossier.pdf", pages=1)
    cert = make_cert(key)
    sign_pdf(pdf_in=pdf, pdf_out=pdf, private_key=key, certificate=cert, reason="Issued")
    other = Ed25519PrivateKey.generate()
    sign_pdf(
        pdf_in=pdf,
        pdf_out=pdf,
        private_key=other,
        certificate=make_cert(other, name="Amina Otieno", handle="aotieno"),
        reason="Received",
        field_name="Signature2",
        visible=True,
    )
    check = verify_pdf_signature(pdf)
    assert check.ok, check.problems
    assert check.signer_name == "Amina Otieno"
    assert check.signer_fingerprint == fingerprint(public_raw(other))


def test_same_field_twice_is_refused_and_leaves_no_output(
    tmp_path: Path, signed_pdf: Path, key: Ed25519PrivateKey
) -> None:
    out = tmp_path / "again.pdf"
    with pytest.raises(SignatureProblem, match="Signature1"):
        sign_pdf(
            pdf_in=signed_pdf,
            pdf_out=out,
            private_key=key,
            certificate=make_cert(key),
            reason="Again",
        )
    assert list(tmp_path.iterdir()) == []


def test_certificate_of_another_key_is_refused(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    other_cert = make_cert(Ed25519PrivateKey.generate())
    with pytest.raises(InvalidInput, match="not for this private key"):
        sign_pdf(
            pdf_in=make_pdf(tmp_path / "d.pdf"),
            pdf_out=tmp_path / "out.pdf",
            private_key=key,
            certificate=other_cert,
            reason="Issued",
        )


def test_not_a_pdf_and_missing_file(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    junk = copy_with(tmp_path, b"not a pdf at all")
    with pytest.raises(InvalidInput, match="not a readable PDF"):
        sign_pdf(
            pdf_in=junk,
            pdf_out=tmp_path / "out.pdf",
            private_key=key,
            certificate=make_cert(key),
            reason="Issued",
        )
    assert not verify_pdf_signature(junk).signed
    with pytest.raises(NotFound):
        verify_pdf_signature(tmp_path / "missing.pdf")


def test_every_sampled_change_in_the_signature_container_is_noticed(
    tmp_path: Path, signed_pdf: Path
) -> None:
    # The /Contents hole is outside the signed byte range; readers ignore hex case and the
    # unsigned CMS fields, so each of these changes needs its own check.
    good = signed_pdf.read_bytes()
    start = good.index(b"/Contents <") + len(b"/Contents <")
    der = bytes.fromhex(good[start : good.index(b">", start)].decode())
    signed_data = cms.ContentInfo.load(der)["content"]
    signer_info = signed_data["signer_infos"][0]
    end = start + 2 * len(der.rstrip(b"\x00")) + 40

    def version_digit(part: cms.SignedData | cms.SignerInfo) -> int:
        # Last hex digit of the INTEGER that opens the SEQUENCE (its header is 4 bytes).
        return start + 2 * (der.index(part.dump()) + 4 + 2) + 1

    sid_issuer = der.index(signer_info["sid"].chosen["issuer"].dump())
    special = [version_digit(signed_data), version_digit(signer_info), start + 2 * sid_issuer + 40]
    missed = []
    for at in [*range(start, end, 23), *special]:
        for mask in (0x01, 0x20):
            data = bytearray(good)
            data[at] ^= mask
            if verify_pdf_signature(copy_with(tmp_path, bytes(data))).ok:
                missed.append((at - start, mask))
    assert missed == []


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=0, max_value=10_000))
def test_arbitrary_bytes_never_crash_the_check(junk: bytes, cut: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "junk.pdf"
        path.write_bytes(b"%PDF-1.7\n" + junk if cut % 2 else junk)
        check = verify_pdf_signature(path)
    assert not check.ok and check.problems
