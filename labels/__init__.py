"""Evidence label payloads, QR encoding/decoding and printable label layouts."""
