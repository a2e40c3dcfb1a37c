"""SMS length: GSM 03.38 (7-bit) when every character fits, else UCS-2, and the segment count."""

from dataclasses import dataclass

# 3GPP TS 23.038 default alphabet (the escape 0x1B excluded) and its extension table.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsLength:
    """How a text travels as SMS: its encoding, its length in units and the segments it takes."""

    encoding: str  # "GSM-7" or "UCS-2"
    units: int
    segments: int


def sms_length(text: str) -> SmsLength:
    """Septets (GSM-7, extension characters count two) or UTF-16 units (UCS-2), and segments."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        single, multi = 160, 153  # a concatenated part loses 7 septets to its header
        encoding = "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi = 70, 67
        encoding = "UCS-2"
    # A concatenated message is split into parts of `multi` units each.
    segments = (1 if units else 0) if units <= single else -(-units // multi)
    return SmsLength(encoding=encoding, units=units, segments=segments)
