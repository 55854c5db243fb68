package org.flinkbridge.protocol;

import java.nio.charset.StandardCharsets;

/**
 * The text of a failure a worker sends, in a gRPC status description or an {@code ERROR} frame, cut to what the
 * bridge always takes (docs/protocol.md, "Error texts"): at most {@link #MAX_BYTES} bytes as {@code grpc-message}
 * carries it, so that a status fits grpc-java's 8 KiB of headers with room to spare. A longer text keeps its start
 * (where a worker names the session, the step and the exception's class) and its end (the innermost cause), cut on
 * UTF-8 character boundaries around {@code ... [N bytes cut; the whole text is in the worker's log] ...}; the
 * worker logs the whole text.
 */
public final class ErrorTexts {

    /** The most bytes an error text may have, counted as {@link #encodedLength} counts them. */
    public static final int MAX_BYTES = 4096;

    /** The share of the room the start of a cut text gets; its end gets the rest. */
    private static final int START_PERCENT = 75;

    private ErrorTexts() {}

    /**
     * The bytes {@code text} takes in {@code grpc-message}, which percent-encodes UTF-8: printable ASCII but
     * {@code %} and {@code ~} (which grpc-java escapes too) is one byte, every other byte three ({@code %XX}).
     */
    public static int encodedLength(String text) {
        byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
        return encodedLength(utf8, 0, utf8.length);
    }

    /**
     * {@code text} as it is when its {@link #encodedLength} is at most {@code maxBytes}; else its start and its end
     * around the marker naming how many UTF-8 bytes were left out, within {@code maxBytes} (which must hold the
     * marker, 70 bytes or so).
     */
    public static String cut(String text, int maxBytes) {
        byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
        if (encodedLength(utf8, 0, utf8.length) <= maxBytes) {
            return text;
        }
        // The marker is ASCII, and no more bytes are cut than the text has.
        int room = Math.max(0, maxBytes - marker(utf8.length).length());
        int start = startWithin(utf8, room * START_PERCENT / 100);
        int end = endWithin(utf8, start, room - encodedLength(utf8, 0, start));
        return new String(utf8, 0, start, StandardCharsets.UTF_8) + marker(end - start)
                + new String(utf8, end, utf8.length - end, StandardCharsets.UTF_8);
    }

    private static String marker(int bytesCut) {
        return " ... [" + bytesCut + " bytes cut; the whole text is in the worker's log] ... ";
    }

    /** Where the longest start of {@code utf8} of at most {@code budget} encoded bytes ends, on a boundary. */
    private static int startWithin(byte[] utf8, int budget) {
        int end = 0;
        for (int used = 0; end < utf8.length && used + encodedLength(utf8[end]) <= budget; end++) {
            used += encodedLength(utf8[end]);
        }
        while (end > 0 && end < utf8.length && continues(utf8[end])) {
            end--;
        }
        return end;
    }

    /** Where the longest end of {@code utf8} after {@code from} of at most {@code budget} encoded bytes starts. */
    private static int endWithin(byte[] utf8, int from, int budget) {
        int start = utf8.length;
        for (int used = 0; start > from && used + encodedLength(utf8[start - 1]) <= budget; start--) {
            used += encodedLength(utf8[start - 1]);
        }
        while (start < utf8.length && continues(utf8[start])) {
            start++;
        }
        return start;
    }

    private static int encodedLength(byte[] utf8, int from, int to) {
        int length = 0;
        for (int i = from; i < to; i++) {
            length += encodedLength(utf8[i]);
        }
        return length;
    }

    private static int encodedLength(byte b) {
        return b >= ' ' && b < '~' && b != '%' ? 1 : 3;
    }

    /** Whether the byte continues a character (10xxxxxx): no text may start or end there. */
    private static boolean continues(byte b) {
        return (b & 0xC0) == 0x80;
    }
}
