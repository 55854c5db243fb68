package org.flinkbridge.conformance;

import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.proto.data.TimerChanges;
import org.flinkbridge.protocol.FrameType;
import org.flinkbridge.protocol.InputFailures;

/**
 * One frame a worker answered with: an {@code OUTPUT} (with its record), an {@code END_OF_OUTPUTS}, an
 * {@code ERROR} (with its message), an {@code INPUT_FAILED} (with its failure), a {@code CELL_WRITES} (with its
 * key's cells) or a {@code TIMERS} (with its timer changes), for the input of {@code sequence}. Types are numbered as
 * on both wires.
 */
record Answer(int type, long sequence, KitRecord output, String error, InputFailures.Failure failure,
              KeyCells cells, TimerChanges timers) {

    Answer(int type, long sequence, KitRecord output, String error) {
        this(type, sequence, output, error, null, null, null);
    }

    Answer(int type, long sequence, KitRecord output, String error, InputFailures.Failure failure) {
        this(type, sequence, output, error, failure, null, null);
    }

    boolean ends() {
        return type == FrameType.END_OF_OUTPUTS || type == FrameType.ERROR || type == FrameType.INPUT_FAILED;
    }

    @Override
    public String toString() {
        return FrameType.name(type) + " #" + sequence + (output != null ? " " + output : "")
                + (error != null ? " '" + error + "'" : "") + (failure != null ? " " + failure : "")
                + (cells != null ? " {" + oneLine(cells) + "}" : "") + (timers != null ? " {" + oneLine(timers) + "}" : "");
    }

    static String oneLine(com.google.protobuf.Message message) {
        return message.toString().strip().replaceAll("\\s*\\R\\s*", " ");
    }
}
