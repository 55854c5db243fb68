package org.flinkbridge.worker;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusException;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.transport.grpc.StatePieces;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.SortedMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class StateAssemblerTest {

    @Test
    void piecesJoinBackIntoEachKeyGroupsState() throws Exception {
        byte[] large = new byte[9 << 20];
        large[large.length - 1] = 42;
        StateAssembler assembler = new StateAssembler();
        for (KeyGroupState piece : StatePieces.cut(3, ByteString.copyFrom(large))) {
            assembler.add(piece);
        }
        assembler.add(piece(5, "five", false));
        assembler.add(KeyGroupState.newBuilder().setState(ByteString.copyFromUtf8("unkeyed")).build());

        SortedMap<Integer, byte[]> states = assembler.states();
        assertEquals(List.of(KeyGroups.NONE, 3, 5), List.copyOf(states.keySet()));
        assertArrayEquals(large, states.get(3));
        assertEquals("five", new String(states.get(5)));
    }

    @Test
    void aKeyGroupGivenTwiceIsRefused() throws Exception {
        StateAssembler assembler = new StateAssembler();
        assembler.add(piece(5, "a", false));
        StatusException twice = assertThrows(StatusException.class, () -> assembler.add(piece(5, "b", false)));
        assertEquals(Status.Code.INVALID_ARGUMENT, twice.getStatus().getCode());
        assertEquals("key group 5 given twice", twice.getStatus().getDescription());
    }

    @Test
    void aKeyGroupWhoseLastPieceNeverComesIsRefused() throws Exception {
        StateAssembler cutOff = new StateAssembler();
        cutOff.add(piece(5, "a", true));
        StatusException atTheEnd = assertThrows(StatusException.class, cutOff::states);
        assertEquals("the state of key group 5 ends without its last piece", atTheEnd.getStatus().getDescription());

        StateAssembler interleaved = new StateAssembler();
        interleaved.add(piece(5, "a", true));
        StatusException another = assertThrows(StatusException.class, () -> interleaved.add(piece(6, "b", false)));
        assertEquals("the state of key group 5 ends without its last piece", another.getStatus().getDescription());
    }

    private static KeyGroupState piece(int keyGroup, String state, boolean continued) {
        return KeyGroupState.newBuilder().setKeyGroup(keyGroup).setState(ByteString.copyFromUtf8(state))
                .setContinued(continued).build();
    }
}
