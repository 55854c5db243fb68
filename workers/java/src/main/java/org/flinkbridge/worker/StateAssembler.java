package org.flinkbridge.worker;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusException;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.protocol.KeyGroups;

import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Joins the pieces of a RestoreState stream back into each key group's state, refusing a stream whose pieces
 * do not make whole states: a key group given twice, or one whose last piece never came.
 */
final class StateAssembler {

    private final SortedMap<Integer, byte[]> states = new TreeMap<>();
    private Integer openKeyGroup;
    private ByteString open = ByteString.EMPTY;

    void add(KeyGroupState piece) throws StatusException {
        int keyGroup = KeyGroups.fromOptional(piece.hasKeyGroup(), piece.getKeyGroup());
        if (openKeyGroup != null && openKeyGroup != keyGroup) {
            throw incomplete(openKeyGroup);
        }
        if (openKeyGroup == null && states.containsKey(keyGroup)) {
            throw Status.INVALID_ARGUMENT.withDescription("key group " + keyGroup + " given twice").asException();
        }
        // ByteString.concat joins without copying; the one copy is toByteArray below.
        open = open.concat(piece.getState());
        if (piece.getContinued()) {
            openKeyGroup = keyGroup;
        } else {
            states.put(keyGroup, open.toByteArray());
            openKeyGroup = null;
            open = ByteString.EMPTY;
        }
    }

    SortedMap<Integer, byte[]> states() throws StatusException {
        if (openKeyGroup != null) {
            throw incomplete(openKeyGroup);
        }
        return states;
    }

    private static StatusException incomplete(int keyGroup) {
        return Status.INVALID_ARGUMENT.withDescription("the state of key group " + keyGroup
                + " ends without its last piece").asException();
    }
}
