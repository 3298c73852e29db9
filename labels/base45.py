"""Base45 encoding (RFC 9285), the text form of signed label payloads.

Base45 uses only characters of the QR alphanumeric set (0-9, A-Z, space and
``$%*+-./:``), so a QR code holding it is encoded in alphanumeric mode at 5.5 bits
per character instead of 8 bits per byte in byte mode.

Invariants: `b45decode(b45encode(data)) == data` for every byte string, and
`b45decode` accepts only canonical input (every group in range, no dangling
single character), raising `PayloadError` otherwise.
"""

from labels.errors import PayloadError

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_INDEX = {char: value for value, char in enumerate(ALPHABET)}


def b45encode(data: bytes) -> str:
    """Encode bytes as base45 text: two bytes become three characters, a last odd byte two."""
    out: list[str] = []
    for pos in range(0, len(data) - 1, 2):
        value = data[pos] * 256 + data[pos + 1]
        value, c = divmod(value, 45)
        e, d = divmod(value, 45)
        out += (ALPHABET[c], ALPHABET[d], ALPHABET[e])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out += (ALPHABET[c], ALPHABET[d])
    return "".join(out)


def b45decode(text: str) -> bytes:
    """Decode base45 text; raise PayloadError for characters or groups that cannot occur."""
    if len(text) % 3 == 1:
        raise PayloadError(
            f"The base45 text has {len(text)} characters, which no byte string encodes to; "
            "the label text is truncated or corrupt, so rescan the label."
        )
    values: list[int] = []
    for pos, char in enumerate(text):
        value = _INDEX.get(char)
        if value is None:
            raise PayloadError(
                f"The label text holds {char!r} at position {pos}, which is not a base45 "
                "character; the label text is corrupt, so rescan the label."
            )
        values.append(value)
    out = bytearray()
    for pos in range(0, len(values), 3):
        group = values[pos : pos + 3]
        if len(group) == 3:
            number = group[0] + group[1] * 45 + group[2] * 45 * 45
            if number > 0xFFFF:
                raise PayloadError(
                    f"The base45 group at position {pos} decodes to {number}, above 65535; "
                    "the label text is corrupt, so rescan the label."
                )
            out += number.to_bytes(2, "big")
        else:
            number = group[0] + group[1] * 45
            if number > 0xFF:
                raise PayloadError(
                    f"The final base45 pair decodes to {number}, above 255; "
                    "the label text is corrupt, so rescan the label."
                )
            out.append(number)
    return bytes(out)
