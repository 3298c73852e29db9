"""Evidence label payloads, QR encoding/decoding and printable label layouts.

A library used by `custody`; it never imports `custody`, typer or rich.

- `labels.payload`: the signed, versioned payload a label's QR code carries
  (`LabelPayload`, `sign_label`, `parse_label`, `verify_label`).
- `labels.base45`: RFC 9285 base45, the payload's text form.
- `labels.qr`: QR matrices and images; decoding every QR code in an image or PDF.
- `labels.layouts`: label stock geometry (A4 3x8, Letter 3x10, thermal 2x1 and 4x6).
- `labels.render`: fitting label text and drawing print jobs to PDF.
- `labels.errors`: `LabelError` and its subclasses.
"""
