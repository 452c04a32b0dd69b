"""Hand-made MQTT packet pieces, for the tests' socket clients that do what paho cannot (publish
and vanish, leave QoS 1 messages unacknowledged, never read): the variable-length integer and the
length-prefixed UTF-8 string of the MQTT 3.1.1 / 5 wire format."""

import struct


def varint(n):
    """MQTT's variable byte integer (remaining length, property lengths)."""
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_string(s):
    """A two-byte length and the UTF-8 bytes of `s` (str or bytes)."""
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b
