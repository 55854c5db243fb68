package org.flinkbridge.bridge.function;

import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.runtime.state.KeyGroupRange;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.protocol.StateStrings;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.flinkbridge.records.BridgeRecord;

/**
 * What a bridge function keeps in Flink's operator state at a checkpoint: the worker's state of a session whose
 * stream is not keyed (or, in checkpoints of earlier versions, by key group), and the outputs and dead letters of
 * inputs before the barrier that were not emitted yet. The entries live in
 * union list state, so after a restore at any parallelism each subtask takes its own: the key groups in its
 * range, and the unkeyed state and outputs of the old subtasks whose index maps onto it.
 *
 * <pre>
 * entry: u8 version (1) | u8 kind | i32 subtask that wrote it | body
 *   kind 0, worker state: a KeyGroupState message (one piece of a key group's state, in the worker's order)
 *   kind 1, output:       i64 timestamp | i32 header count | (UTF key, UTF value)* | i32 length | payload
 *   kind 2, dead letter:  as an output
 *   kind 3, map marks:    u8 1 where the subtask's keys mark their map cells (CellStates), 0 where they do not
 * </pre>
 *
 * <p>Every subtask writes a kind 3 entry at each checkpoint. A job restored from a checkpoint without one (taken before
 * the marks) or with a 0 from any subtask has map entries without marks, and keeps reading every map cell.
 */
final class CheckpointEntries {

    static final ListStateDescriptor<byte[]> DESCRIPTOR =
            new ListStateDescriptor<>("flink-bridge-session", PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);

    /** 2: strings as a length and UTF-8 ({@link StateStrings}), where 1 had writeUTF, limited to 64 KiB. */
    private static final byte VERSION = 2;
    private static final byte WORKER_STATE = 0;
    private static final byte OUTPUT = 1;
    private static final byte DEAD_LETTER = 2;
    private static final byte MAP_MARKS = 3;

    /**
     * What one subtask takes back from a checkpoint.
     *
     * @param mapsMarked whether every old subtask wrote that its keys mark their map cells (false where none wrote)
     */
    record Restored(List<KeyGroupState> workerStates, List<BridgeRecord> outputs, List<BridgeRecord> deadLetters,
                    boolean mapsMarked) {}

    private CheckpointEntries() {}

    static byte[] workerState(int subtask, KeyGroupState state) {
        return entry(WORKER_STATE, subtask, out -> out.write(state.toByteArray()));
    }

    static byte[] mapMarks(int subtask, boolean marked) {
        return entry(MAP_MARKS, subtask, out -> out.writeByte(marked ? 1 : 0));
    }

    static byte[] output(int subtask, BridgeRecord record) {
        return record(OUTPUT, subtask, record);
    }

    static byte[] deadLetter(int subtask, BridgeRecord letter) {
        return record(DEAD_LETTER, subtask, letter);
    }

    private static byte[] record(byte kind, int subtask, BridgeRecord record) {
        return entry(kind, subtask, out -> {
            out.writeLong(record.timestamp);
            out.writeInt(record.headers.size());
            for (Map.Entry<String, String> header : record.headers.entrySet()) {
                StateStrings.write(out, header.getKey());
                StateStrings.write(out, header.getValue());
            }
            out.writeInt(record.payload.length);
            out.write(record.payload);
        });
    }

    /**
     * The entries subtask {@code subtask} of {@code parallelism} takes.
     *
     * @throws IOException when an entry is corrupt, or unkeyed worker states of several old subtasks would
     *                     have to be merged into one session
     */
    static Restored select(Iterable<byte[]> entries, int subtask, int parallelism, int maxParallelism)
            throws IOException {
        KeyGroupRange keyGroups =
                KeyGroupRangeAssignment.computeKeyGroupRangeForOperatorIndex(maxParallelism, parallelism, subtask);
        List<KeyGroupState> states = new ArrayList<>();
        List<BridgeRecord> outputs = new ArrayList<>();
        List<BridgeRecord> deadLetters = new ArrayList<>();
        Integer unkeyedFrom = null;
        boolean marksSeen = false;
        boolean allMarked = true;
        for (byte[] entry : entries) {
            DataInputStream in = new DataInputStream(new ByteArrayInputStream(entry));
            byte version = in.readByte();
            if (version != VERSION) {
                throw new IOException("a checkpoint entry of version " + version + "; this bridge reads " + VERSION);
            }
            byte kind = in.readByte();
            int writer = in.readInt();
            boolean mine = writer % parallelism == subtask;
            switch (kind) {
                case WORKER_STATE -> {
                    KeyGroupState state = KeyGroupState.parseFrom(in);
                    if (state.hasKeyGroup() ? keyGroups.contains(state.getKeyGroup()) : mine) {
                        if (!state.hasKeyGroup() && unkeyedFrom != null && unkeyedFrom != writer) {
                            throw new IOException("the segment is not keyed, so the worker state of old subtasks "
                                    + unkeyedFrom + " and " + writer + " cannot be merged into subtask " + subtask
                                    + " of " + parallelism + "; restore at the parallelism it was taken at, or key "
                                    + "the stream");
                        }
                        unkeyedFrom = state.hasKeyGroup() ? unkeyedFrom : Integer.valueOf(writer);
                        states.add(state);
                    }
                }
                case OUTPUT, DEAD_LETTER -> {
                    BridgeRecord record = readOutput(in);
                    if (mine) {
                        (kind == OUTPUT ? outputs : deadLetters).add(record);
                    }
                }
                case MAP_MARKS -> {
                    marksSeen = true;
                    allMarked &= in.readUnsignedByte() == 1;
                }
                default -> throw new IOException("a checkpoint entry of unknown kind " + kind);
            }
        }
        return new Restored(states, outputs, deadLetters, marksSeen && allMarked);
    }

    private static BridgeRecord readOutput(DataInputStream in) throws IOException {
        long timestamp = in.readLong();
        int headerCount = in.readInt();
        // Each header takes at least its two lengths: a count beyond that is corrupt, not a capacity to allocate.
        if (headerCount < 0 || headerCount > in.available() / (2 * Integer.BYTES)) {
            throw new IOException("a held output with " + headerCount + " headers in " + in.available() + " bytes");
        }
        Map<String, String> headers = new HashMap<>(headerCount * 2);
        for (int i = 0; i < headerCount; i++) {
            headers.put(StateStrings.read(in), StateStrings.read(in));
        }
        return new BridgeRecord(StateStrings.readBytes(in, "held output"), headers, timestamp);
    }

    @FunctionalInterface
    private interface Body {
        void write(DataOutputStream out) throws IOException;
    }

    private static byte[] entry(byte kind, int subtask, Body body) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeByte(VERSION);
            out.writeByte(kind);
            out.writeInt(subtask);
            body.write(out);
        } catch (IOException e) {
            throw new UncheckedIOException("writing to memory cannot fail", e);
        }
        return bytes.toByteArray();
    }
}
