package org.flinkbridge.bridge.function;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import org.apache.flink.runtime.state.KeyGroupStatePartitionStreamProvider;
import org.apache.flink.runtime.state.KeyGroupsList;
import org.apache.flink.runtime.state.KeyedStateCheckpointOutputStream;
import org.flinkbridge.proto.control.KeyGroupState;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The worker state of a keyed segment in Flink's raw keyed state: one entry per key group, so a restored subtask
 * reads only the key groups it now owns (operator state would hand every subtask everyone's state).
 *
 * <pre>
 * each key group of the subtask's range, in ascending order (Flink's own timers write theirs the same way):
 *   u8 version (1) | (i32 length >= 0 | the piece's bytes)* | i32 -1
 * </pre>
 * The pieces are the worker's, in its order; a key group without state has none.
 */
final class KeyGroupStateStream {

    private static final byte VERSION = 1;
    private static final int END = -1;
    /** A piece came in one gRPC message, which the bridge takes up to 64 MiB. */
    private static final int MAX_PIECE_BYTES = 64 << 20;

    private KeyGroupStateStream() {}

    /**
     * Writes the pieces by key group, every key group of the stream's range included.
     *
     * @throws IOException naming the key group when the worker gave state for one outside the range
     */
    static void write(KeyedStateCheckpointOutputStream out, List<KeyGroupState> pieces) throws IOException {
        KeyGroupsList range = out.getKeyGroupList();
        for (KeyGroupState piece : pieces) {
            if (!piece.hasKeyGroup() || !range.contains(piece.getKeyGroup())) {
                throw new IOException("the worker gave state for " + (piece.hasKeyGroup()
                        ? "key group " + piece.getKeyGroup() : "no key group") + ", which is not among the key "
                        + "groups " + range + " this subtask owns");
            }
        }
        // A stable sort keeps each key group's pieces in the worker's order.
        List<KeyGroupState> sorted = pieces.stream().sorted(Comparator.comparingInt(KeyGroupState::getKeyGroup))
                .toList();
        DataOutputStream data = new DataOutputStream(out);
        int next = 0;
        for (int i = 0; i < range.getNumberOfKeyGroups(); i++) {
            int keyGroup = range.getKeyGroupId(i);
            out.startNewKeyGroup(keyGroup);
            data.writeByte(VERSION);
            for (; next < sorted.size() && sorted.get(next).getKeyGroup() == keyGroup; next++) {
                ByteString state = sorted.get(next).getState();
                data.writeInt(state.size());
                state.writeTo(data);
            }
            data.writeInt(END);
        }
        data.flush();
    }

    /** Reads back the pieces of the key groups this subtask owns, as {@code KeyGroupState} pieces. */
    static List<KeyGroupState> read(Iterable<KeyGroupStatePartitionStreamProvider> keyGroups) throws IOException {
        List<KeyGroupState> pieces = new ArrayList<>();
        for (KeyGroupStatePartitionStreamProvider keyGroup : keyGroups) {
            DataInputStream in = new DataInputStream(keyGroup.getStream());
            int id = keyGroup.getKeyGroupId();
            byte version = in.readByte();
            if (version != VERSION) {
                throw new IOException("key group " + id + "'s worker state is of version " + version
                        + "; this bridge reads " + VERSION);
            }
            int first = pieces.size();
            for (int length = in.readInt(); length != END; length = in.readInt()) {
                if (length < 0 || length > MAX_PIECE_BYTES) {
                    throw new IOException("key group " + id + "'s worker state holds a piece of " + length
                            + " bytes, where one is at most " + MAX_PIECE_BYTES);
                }
                byte[] state = new byte[length];
                in.readFully(state);
                pieces.add(KeyGroupState.newBuilder().setKeyGroup(id).setContinued(true)
                        .setState(UnsafeByteOperations.unsafeWrap(state)).build());
            }
            if (pieces.size() > first) {
                int last = pieces.size() - 1;
                pieces.set(last, pieces.get(last).toBuilder().setContinued(false).build());
            }
        }
        return pieces;
    }
}
