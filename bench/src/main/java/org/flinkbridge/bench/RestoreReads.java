package org.flinkbridge.bench;

import org.apache.flink.runtime.checkpoint.Checkpoints;
import org.apache.flink.runtime.checkpoint.OperatorState;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.runtime.checkpoint.metadata.CheckpointMetadata;
import org.apache.flink.runtime.state.KeyGroupRange;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.apache.flink.runtime.state.KeyGroupsStateHandle;
import org.apache.flink.runtime.state.KeyedStateHandle;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What each subtask of a keyed job restored at a given parallelism reads of a checkpoint, <b>computed from the
 * checkpoint's metadata</b> (not measured): the sizes of the keyed state handles its key-group range selects. A
 * handle of RocksDB's incremental checkpoints is read whole by every subtask whose range meets it (its files are
 * downloaded, then cut to the range); a handle that records where each key group starts (raw keyed state, such as
 * the bridge's whole-instance worker state, or a full snapshot) is read for its selected key groups only.
 */
final class RestoreReads {

    private RestoreReads() {}

    /**
     * One keyed state handle: its key groups, its bytes and, where it records them, the bytes of each of its key
     * groups (null where it is read whole).
     */
    record Piece(int firstKeyGroup, int lastKeyGroup, long bytes, long[] keyGroupBytes) {

        /** The bytes a subtask of {@code range} reads of it. */
        long bytesFor(KeyGroupRange range) {
            int first = Math.max(firstKeyGroup, range.getStartKeyGroup());
            int last = Math.min(lastKeyGroup, range.getEndKeyGroup());
            if (first > last) {
                return 0;
            }
            if (keyGroupBytes == null) {
                return bytes;
            }
            long read = 0;
            for (int keyGroup = first; keyGroup <= last; keyGroup++) {
                read += keyGroupBytes[keyGroup - firstKeyGroup];
            }
            return read;
        }
    }

    /** The bytes each of {@code parallelism} subtasks reads of {@code pieces}, by Flink's key-group assignment. */
    static long[] perSubtask(List<Piece> pieces, int maxParallelism, int parallelism) {
        long[] bytes = new long[parallelism];
        for (int subtask = 0; subtask < parallelism; subtask++) {
            KeyGroupRange range = KeyGroupRangeAssignment.computeKeyGroupRangeForOperatorIndex(maxParallelism,
                    parallelism, subtask);
            for (Piece piece : pieces) {
                bytes[subtask] += piece.bytesFor(range);
            }
        }
        return bytes;
    }

    /** The keyed state of a checkpoint: its handles, and the max parallelism of the operator that holds them. */
    record KeyedState(List<Piece> pieces, int maxParallelism) {}

    /**
     * Reads the metadata of the checkpoint at {@code externalPath} (as Flink's checkpoint statistics name it) and
     * gives its keyed state handles, managed and raw, of every operator.
     *
     * @throws IllegalStateException when operators of different max parallelism hold keyed state
     */
    static KeyedState read(String externalPath) throws IOException {
        Path metadata = directory(externalPath).resolve("_metadata");
        CheckpointMetadata checkpoint;
        try (InputStream in = Files.newInputStream(metadata)) {
            checkpoint = Checkpoints.loadCheckpointMetadata(new DataInputStream(in),
                    RestoreReads.class.getClassLoader(), externalPath);
        }
        List<Piece> pieces = new ArrayList<>();
        int maxParallelism = -1;
        for (OperatorState operator : checkpoint.getOperatorStates()) {
            int before = pieces.size();
            for (OperatorSubtaskState subtask : operator.getStates()) {
                subtask.getManagedKeyedState().forEach(handle -> pieces.add(piece(handle)));
                subtask.getRawKeyedState().forEach(handle -> pieces.add(piece(handle)));
            }
            if (pieces.size() > before) {
                if (maxParallelism != -1 && maxParallelism != operator.getMaxParallelism()) {
                    throw new IllegalStateException("checkpoint " + externalPath + " holds keyed state of operators"
                            + " with max parallelism " + maxParallelism + " and " + operator.getMaxParallelism());
                }
                maxParallelism = operator.getMaxParallelism();
            }
        }
        return new KeyedState(pieces, maxParallelism);
    }

    /** The directory of the checkpoint at {@code externalPath}, as Flink's checkpoint statistics name it. */
    static Path directory(String externalPath) {
        return Path.of(URI.create(externalPath.startsWith("file:") ? externalPath : "file:" + externalPath));
    }

    private static Piece piece(KeyedStateHandle handle) {
        KeyGroupRange range = handle.getKeyGroupRange();
        if (!(handle instanceof KeyGroupsStateHandle groups)) {
            return new Piece(range.getStartKeyGroup(), range.getEndKeyGroup(), handle.getStateSize(), null);
        }
        // Each key group runs from its offset to the next one's, the last to the end of the stream.
        long[] keyGroupBytes = new long[range.getNumberOfKeyGroups()];
        for (int i = 0; i < keyGroupBytes.length; i++) {
            int keyGroup = range.getStartKeyGroup() + i;
            long end = keyGroup == range.getEndKeyGroup() ? groups.getStateSize()
                    : groups.getOffsetForKeyGroup(keyGroup + 1);
            keyGroupBytes[i] = end - groups.getOffsetForKeyGroup(keyGroup);
        }
        return new Piece(range.getStartKeyGroup(), range.getEndKeyGroup(), groups.getStateSize(), keyGroupBytes);
    }
}
