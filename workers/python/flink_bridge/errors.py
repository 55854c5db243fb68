"""The text of a failure the worker sends, in a gRPC status's details or an ERROR frame, cut to what the bridge
always takes (docs/protocol.md, "Error texts"): at most MAX_BYTES bytes as grpc-message carries it, so that a
status fits grpc-java's 8 KiB of headers with room to spare. A longer text keeps its start (where the worker names
the session, the step and the exception's class) and its end (the innermost cause), cut on UTF-8 character
boundaries around ``... [N bytes cut; the whole text is in the worker's log] ...``; the worker logs the whole text.
"""

# The most bytes an error text may have, counted as encoded_length counts them.
MAX_BYTES = 4096
# The share of the room the start of a cut text gets; its end gets the rest.
_START_PERCENT = 75


def encoded_length(text):
    """The bytes ``text`` takes in grpc-message, which percent-encodes UTF-8: printable ASCII but ``%`` and ``~``
    (which grpc-java escapes too) is one byte, every other byte three (``%XX``)."""
    return _encoded_length(text.encode("utf-8", "replace"))


def cut(text, max_bytes=MAX_BYTES):
    """``text`` as it is when its encoded_length is at most ``max_bytes``; else its start and its end around the
    marker naming how many UTF-8 bytes were left out, within ``max_bytes`` (which must hold the marker)."""
    utf8 = text.encode("utf-8", "replace")
    if _encoded_length(utf8) <= max_bytes:
        return text
    # The marker is ASCII, and no more bytes are cut than the text has.
    room = max(0, max_bytes - len(_marker(len(utf8))))
    start = _start_within(utf8, room * _START_PERCENT // 100)
    end = _end_within(utf8, start, room - _encoded_length(utf8[:start]))
    return utf8[:start].decode("utf-8") + _marker(end - start) + utf8[end:].decode("utf-8")


def for_bridge(text, log):
    """``text`` cut for the bridge, its whole text given to ``log`` (a logger) first when it is cut: for a failure
    not logged already, so that the marker's word holds."""
    if _encoded_length(text.encode("utf-8", "replace")) > MAX_BYTES:
        log.warning("cut for the bridge; the whole text: %s", text)
    return cut(text)


def _marker(bytes_cut):
    return f" ... [{bytes_cut} bytes cut; the whole text is in the worker's log] ... "


def _start_within(utf8, budget):
    """Where the longest start of ``utf8`` of at most ``budget`` encoded bytes ends, on a character boundary."""
    end = used = 0
    while end < len(utf8) and used + _cost(utf8[end]) <= budget:
        used += _cost(utf8[end])
        end += 1
    while 0 < end < len(utf8) and _continues(utf8[end]):
        end -= 1
    return end


def _end_within(utf8, after, budget):
    """Where the longest end of ``utf8`` past ``after`` of at most ``budget`` encoded bytes starts."""
    start, used = len(utf8), 0
    while start > after and used + _cost(utf8[start - 1]) <= budget:
        used += _cost(utf8[start - 1])
        start -= 1
    while start < len(utf8) and _continues(utf8[start]):
        start += 1
    return start


def _encoded_length(utf8):
    return sum(map(_cost, utf8))


def _cost(byte):
    return 1 if 0x20 <= byte < 0x7E and byte != 0x25 else 3


def _continues(byte):
    """Whether the byte continues a character (10xxxxxx): no text may start or end there."""
    return byte & 0xC0 == 0x80
