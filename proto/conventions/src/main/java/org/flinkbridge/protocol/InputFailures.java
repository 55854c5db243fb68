package org.flinkbridge.protocol;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * The body of an {@code INPUT_FAILED} frame on a ring (docs/protocol.md, "Failed inputs"): which dead-letter step
 * failed on a record, and how.
 *
 * <pre>
 * i32 length | step name (UTF-8) | i32 length | error class (UTF-8) | i32 length | message (UTF-8)
 * </pre>
 * Integers little-endian; each text at most {@link ErrorTexts#MAX_BYTES}, cut as error texts are.
 */
public final class InputFailures {

    private static final ValueLayout.OfInt LENGTH =
            ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** A failed input as a worker names it. */
    public record Failure(String step, String errorClass, String message) {}

    private InputFailures() {}

    /**
     * The body, its message cut to what is left of {@code maxBodyBytes} (what one frame holds) after the step and
     * the error class, and to at most {@link ErrorTexts#MAX_BYTES}.
     */
    public static byte[] body(String step, String errorClass, String message, int maxBodyBytes) {
        byte[] stepBytes = utf8(step, ErrorTexts.MAX_BYTES);
        byte[] classBytes = utf8(errorClass, ErrorTexts.MAX_BYTES);
        int room = maxBodyBytes - 3 * Integer.BYTES - stepBytes.length - classBytes.length;
        byte[][] texts = {stepBytes, classBytes, utf8(message, Math.max(0, Math.min(ErrorTexts.MAX_BYTES, room)))};
        ByteBuffer body = ByteBuffer.allocate(3 * Integer.BYTES + texts[0].length + texts[1].length + texts[2].length)
                .order(ByteOrder.LITTLE_ENDIAN);
        for (byte[] text : texts) {
            body.putInt(text.length).put(text);
        }
        return body.array();
    }

    /**
     * Reads a body from {@code length} bytes at {@code offset}, each length read once and checked before use.
     *
     * @throws CorruptRecordException when a length runs past the body, or bytes are left after the message
     */
    public static Failure read(MemorySegment file, long offset, int length) throws CorruptRecordException {
        long end = offset + length;
        long at = offset;
        String[] texts = new String[3];
        for (int i = 0; i < texts.length; i++) {
            if (end - at < Integer.BYTES) {
                throw new CorruptRecordException("a failed input's body of " + length + " bytes ends before field "
                        + (i + 1) + " of 3");
            }
            int size = file.get(LENGTH, at);
            at += Integer.BYTES;
            if (size < 0 || size > end - at) {
                throw new CorruptRecordException("a failed input's field " + (i + 1) + " of " + size
                        + " bytes in a body of " + length);
            }
            texts[i] = new String(file.asSlice(at, size).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
            at += size;
        }
        if (at != end) {
            throw new CorruptRecordException((end - at) + " bytes after a failed input's message");
        }
        return new Failure(texts[0], texts[1], texts[2]);
    }

    /** A text cut as error texts are; at most {@code maxBytes} bytes of UTF-8 (a cut counts bytes as encoded). */
    private static byte[] utf8(String text, int maxBytes) {
        return ErrorTexts.cut(text, maxBytes).getBytes(StandardCharsets.UTF_8);
    }
}
