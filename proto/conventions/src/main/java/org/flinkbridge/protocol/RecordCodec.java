package org.flinkbridge.protocol;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * The body of RECORD and OUTPUT frames:
 *
 * <pre>
 *   i64 timestamp | i32 header count | (i32 key length, key, i32 value length, value)* | i32 payload length | payload
 * </pre>
 *
 * Strings are UTF-8. Written straight into the memory it travels or is kept in (a ring, the replay journal), with no
 * intermediate buffer; read with every length read once and checked against the body's end, since a peer sharing
 * the memory may rewrite a length between two reads of it.
 */
public final class RecordCodec {

    private static final int FIXED = 8 + 4 + 4;

    private RecordCodec() {}

    public static int bodyLength(Map<String, String> headers, byte[] payload) {
        int length = FIXED + payload.length;
        for (Map.Entry<String, String> header : headers.entrySet()) {
            length += 8 + utf8Length(header.getKey()) + utf8Length(header.getValue());
        }
        return length;
    }

    public static void write(MemorySegment file, long offset, long timestamp, Map<String, String> headers,
                             byte[] payload) {
        file.set(ValueLayout.JAVA_LONG_UNALIGNED, offset, timestamp);
        file.set(ValueLayout.JAVA_INT_UNALIGNED, offset + 8, headers.size());
        long at = offset + 12;
        for (Map.Entry<String, String> header : headers.entrySet()) {
            at = writeString(file, at, header.getKey());
            at = writeString(file, at, header.getValue());
        }
        file.set(ValueLayout.JAVA_INT_UNALIGNED, at, payload.length);
        MemorySegment.copy(payload, 0, file, ValueLayout.JAVA_BYTE, at + 4, payload.length);
    }

    /** Decodes a body, reading each length once and checking it against the body's end. */
    public static <T> T read(MemorySegment file, long offset, int length, RecordSink<T> sink) throws CorruptRecordException {
        long end = offset + length;
        if (length < FIXED) {
            throw corrupt("a record body of " + length + " bytes is shorter than " + FIXED);
        }
        long timestamp = file.get(ValueLayout.JAVA_LONG_UNALIGNED, offset);
        int count = file.get(ValueLayout.JAVA_INT_UNALIGNED, offset + 8);
        if (count < 0 || count > (length - FIXED) / 8) {
            throw corrupt("impossible header count " + count);
        }
        Map<String, String> headers = count == 0 ? Map.of() : new java.util.HashMap<>(count * 2);
        long at = offset + 12;
        for (int i = 0; i < count; i++) {
            int keyLength = stringLength(file, at, end);
            String key = string(file, at, keyLength);
            at += 4 + keyLength;
            int valueLength = stringLength(file, at, end);
            String value = string(file, at, valueLength);
            at += 4 + valueLength;
            headers.put(key, value);
        }
        if (at + 4 > end) {
            throw corrupt("the record body ends before its payload length");
        }
        int payloadLength = file.get(ValueLayout.JAVA_INT_UNALIGNED, at);
        if (payloadLength < 0 || at + 4 + payloadLength != end) {
            throw corrupt("payload length " + payloadLength + " does not match the body's remaining " + (end - at - 4)
                    + " bytes");
        }
        byte[] payload = new byte[payloadLength];
        MemorySegment.copy(file, ValueLayout.JAVA_BYTE, at + 4, payload, 0, payloadLength);
        return sink.record(timestamp, headers, payload);
    }

    /**
     * The length of the string at {@code at}, checked against the body's end. The caller uses only this value: the
     * peer may rewrite the length meanwhile, and a second read could move the decoder anywhere in the mapping.
     */
    private static int stringLength(MemorySegment file, long at, long end) throws CorruptRecordException {
        if (at + 4 > end) {
            throw corrupt("the record body ends inside its headers");
        }
        int length = file.get(ValueLayout.JAVA_INT_UNALIGNED, at);
        if (length < 0 || at + 4 + length > end) {
            throw corrupt("a header of " + length + " bytes runs past the body");
        }
        return length;
    }

    /** The string at {@code at} of the {@code length} that {@link #stringLength} checked. */
    private static String string(MemorySegment file, long at, int length) {
        byte[] bytes = new byte[length];
        MemorySegment.copy(file, ValueLayout.JAVA_BYTE, at + 4, bytes, 0, length);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    /** Only called once a check has failed: the message is built then, never on the path of a good record. */
    private static CorruptRecordException corrupt(String problem) {
        return new CorruptRecordException("corrupt record body: " + problem);
    }

    private static long writeString(MemorySegment file, long at, String text) {
        long start = at + 4;
        long position = start;
        for (int i = 0; i < text.length(); i++) {
            int c = codePoint(text, i);
            if (Character.isSupplementaryCodePoint(c)) {
                i++;
            }
            if (c < 0x80) {
                file.set(ValueLayout.JAVA_BYTE, position++, (byte) c);
            } else if (c < 0x800) {
                file.set(ValueLayout.JAVA_BYTE, position++, (byte) (0xC0 | (c >> 6)));
                file.set(ValueLayout.JAVA_BYTE, position++, (byte) (0x80 | (c & 0x3F)));
            } else if (c < 0x10000) {
                file.set(ValueLayout.JAVA_BYTE, position++, (byte) (0xE0 | (c >> 12)));
                file.set(ValueLayout.JAVA_BYTE, position++, (byte) (0x80 | ((c >> 6) & 0x3F)));
                file.set(ValueLayout.JAVA_BYTE, position++, (byte) (0x80 | (c & 0x3F)));
            } else {
                file.set(ValueLayout.JAVA_BYTE, position++, (byte) (0xF0 | (c >> 18)));
                file.set(ValueLayout.JAVA_BYTE, position++, (byte) (0x80 | ((c >> 12) & 0x3F)));
                file.set(ValueLayout.JAVA_BYTE, position++, (byte) (0x80 | ((c >> 6) & 0x3F)));
                file.set(ValueLayout.JAVA_BYTE, position++, (byte) (0x80 | (c & 0x3F)));
            }
        }
        file.set(ValueLayout.JAVA_INT_UNALIGNED, at, (int) (position - start));
        return position;
    }

    /** The code point at {@code i}, with a lone surrogate (not valid UTF-8) replaced by U+FFFD. */
    private static int codePoint(String text, int i) {
        int c = text.codePointAt(i);
        return Character.isSurrogate((char) c) && c < 0x10000 ? 0xFFFD : c;
    }

    /** UTF-8 length without encoding, as {@link #writeString} writes it. */
    private static int utf8Length(String text) {
        int length = 0;
        for (int i = 0; i < text.length(); i++) {
            int c = codePoint(text, i);
            if (Character.isSupplementaryCodePoint(c)) {
                i++;
                length += 4;
            } else {
                length += c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
            }
        }
        return length;
    }
}
