"""The body of RECORD and OUTPUT frames:

    i64 timestamp | i32 header count | (i32 key length, key, i32 value length, value)* | i32 payload length | payload

and of INPUT_FAILED frames (i32 length and bytes of the step's name, the error's class and its message).
Strings are UTF-8. Every length is checked against the bytes left before it is used: the bytes are the
peer's to write.
"""
import struct

from .sdk import Message

_FIXED = struct.Struct("<qi")
_LENGTH = struct.Struct("<i")
_unpack_fixed = _FIXED.unpack_from
_unpack_length = _LENGTH.unpack_from
_pack_length = _LENGTH.pack
FIXED_LENGTH = _FIXED.size + _LENGTH.size


class CorruptRecord(Exception):
    """A record body whose lengths cannot be right."""


def decode(buffer, offset, length):
    """The record in ``buffer[offset:offset+length]``."""
    end = offset + length
    if length < FIXED_LENGTH:
        raise CorruptRecord(f"corrupt record body: a record body of {length} bytes is shorter than {FIXED_LENGTH}")
    timestamp, count = _unpack_fixed(buffer, offset)
    if count < 0 or count > (length - FIXED_LENGTH) // 8:
        raise CorruptRecord(f"corrupt record body: impossible header count {count}")
    at = offset + 12
    headers = {}
    for _ in range(count):
        key, at = _read_string(buffer, at, end)
        value, at = _read_string(buffer, at, end)
        headers[key] = value
    if at + 4 > end:
        raise CorruptRecord("corrupt record body: the record body ends before its payload length")
    (payload_length,) = _unpack_length(buffer, at)
    if payload_length < 0 or at + 4 + payload_length != end:
        raise CorruptRecord(f"corrupt record body: payload length {payload_length} does not match the body's "
                            f"remaining {end - at - 4} bytes")
    return Message(bytes(buffer[at + 4:end]), headers, timestamp)


def _read_string(buffer, at, end):
    if at + 4 > end:
        raise CorruptRecord("corrupt record body: the record body ends inside its headers")
    (length,) = _unpack_length(buffer, at)
    if length < 0 or at + 4 + length > end:
        raise CorruptRecord(f"corrupt record body: a header of {length} bytes runs past the body")
    start = at + 4
    return bytes(buffer[start:start + length]).decode("utf-8", "replace"), start + length


_NO_HEADERS = struct.Struct("<qii")


def encode(message):
    """The body of ``message`` as bytes; the caller has checked its types (segments.UserSegment.checked)."""
    if not message.headers:
        return _NO_HEADERS.pack(message.timestamp, 0, len(message.payload)) + message.payload
    parts = [_FIXED.pack(message.timestamp, len(message.headers))]
    for key, value in message.headers.items():
        key_bytes = key.encode("utf-8")
        value_bytes = value.encode("utf-8")
        parts.append(_pack_length(len(key_bytes)))
        parts.append(key_bytes)
        parts.append(_pack_length(len(value_bytes)))
        parts.append(value_bytes)
    parts.append(_pack_length(len(message.payload)))
    parts.append(message.payload)
    return b"".join(parts)


def encode_failure(step, error_class, message):
    """The body of an INPUT_FAILED frame; a character UTF-8 cannot take (a lone surrogate) becomes ``?``."""
    fields = [text.encode("utf-8", "replace") for text in (step, error_class, message)]
    return b"".join(_pack_length(len(field)) + field for field in fields)
