package org.flinkbridge.pipeline;

import java.io.DataInputStream;
import java.io.DataOutput;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * Strings in the bridge's checkpoint entries and the worker's state encodings: a length in bytes, then UTF-8.
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
        int length = in.readInt();
        if (length < 0 || length > in.available()) {
            throw new IOException("a string of " + length + " bytes with " + in.available() + " left");
        }
        return new String(in.readNBytes(length), StandardCharsets.UTF_8);
    }
}
