package org.flinkbridge.protocol;

import java.io.DataInputStream;
import java.io.DataOutput;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * Strings (and byte arrays) in the bridge's checkpoint entries and the worker's state encodings: a length in bytes,
 * then the bytes (UTF-8 for a string).
 * {@code writeUTF} cannot hold a string over 64 KiB, and one record with such a header or key made every later
 * checkpoint fail (and a restore replay the poison); here a string is as long as a byte array may be.
 */
public final class StateStrings {

    private StateStrings() {}

    public static void write(DataOutput out, String value) throws IOException {
        byte[] bytes = value.getBytes(StandardCharsets.UTF_8);
        out.writeInt(bytes.length);
        out.write(bytes);
    }

    /** Reads a string {@link #write} wrote, refusing a length that runs past the bytes left. */
    public static String read(DataInputStream in) throws IOException {
        return new String(readBytes(in, "string"), StandardCharsets.UTF_8);
    }

    /**
     * Reads an int length and that many bytes, refusing a length that runs past the bytes left (an error
     * naming {@code what}) rather than allocating what a corrupt length claims.
     */
    public static byte[] readBytes(DataInputStream in, String what) throws IOException {
        int length = in.readInt();
        if (length < 0 || length > in.available()) {
            throw new IOException("a " + what + " of " + length + " bytes with " + in.available() + " left");
        }
        return in.readNBytes(length);
    }
}
