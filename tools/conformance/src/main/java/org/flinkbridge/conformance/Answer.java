package org.flinkbridge.conformance;

import org.flinkbridge.protocol.FrameType;

/**
 * One frame a worker answered with: an {@code OUTPUT} (with its record), an {@code END_OF_OUTPUTS} or an
 * {@code ERROR} (with its message), for the input of {@code sequence}. Types are numbered as on both wires.
 */
record Answer(int type, long sequence, KitRecord output, String error) {

    boolean ends() {
        return type == FrameType.END_OF_OUTPUTS || type == FrameType.ERROR;
    }

    @Override
    public String toString() {
        return FrameType.name(type) + " #" + sequence + (output != null ? " " + output : "")
                + (error != null ? " '" + error + "'" : "");
    }
}
