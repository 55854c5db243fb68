package org.flinkbridge.worker.cells;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * A byte array compared by content, in unsigned byte order: a key of the session's resident keys and of a map
 * cell's entries. One instance per session serves as a probe, its array swapped for each lookup, so that a lookup
 * allocates nothing; a probe is never stored.
 */
final class Bytes implements Comparable<Bytes> {

    /** Keys longer than this are cut in messages. */
    private static final int DESCRIBED_BYTES = 200;

    private byte[] bytes;
    private int hash;
    private boolean hashed;

    private Bytes(byte[] bytes) {
        this.bytes = bytes;
    }

    /** A key of its own: a copy of {@code bytes}, which the caller may change afterwards. */
    static Bytes copyOf(byte[] bytes) {
        return new Bytes(bytes.clone());
    }

    /** {@code bytes} themselves, which nobody changes afterwards. */
    static Bytes wrap(byte[] bytes) {
        return new Bytes(bytes);
    }

    /** A probe, pointed at an array with {@link #probe}. */
    static Bytes probe() {
        return new Bytes(new byte[0]);
    }

    /** This probe, now standing for {@code bytes}. */
    Bytes probe(byte[] bytes) {
        this.bytes = bytes;
        this.hashed = false;
        return this;
    }

    byte[] bytes() {
        return bytes;
    }

    @Override
    public int compareTo(Bytes other) {
        return Arrays.compareUnsigned(bytes, other.bytes);
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof Bytes that && Arrays.equals(bytes, that.bytes);
    }

    @Override
    public int hashCode() {
        if (!hashed) {
            hash = Arrays.hashCode(bytes);
            hashed = true;
        }
        return hash;
    }

    /** The key as messages name it: its text in quotes when it is UTF-8 (keys are), else its bytes in hex. */
    @Override
    public String toString() {
        return describe(bytes);
    }

    static String describe(byte[] key) {
        int shown = Math.min(key.length, DESCRIBED_BYTES);
        String more = shown < key.length ? "... (" + key.length + " bytes)" : "";
        try {
            String text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(key, 0, shown)).toString();
            if (text.chars().noneMatch(Character::isISOControl)) {
                return "'" + text + "'" + more;
            }
        } catch (CharacterCodingException e) {
            // A key cut inside a character, or no text: shown in hex.
        }
        return "0x" + HexFormat.of().formatHex(key, 0, shown) + more;
    }
}
