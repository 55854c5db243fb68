package org.flinkbridge.transport.grpc;

import com.google.protobuf.ByteString;
import org.flinkbridge.proto.control.KeyGroupState;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StatePiecesTest {

    private static final int MIB = 1 << 20;

    @Test
    void aStateLargerThanAMessageIsCutIntoPiecesThatJoinBackToIt() {
        byte[] state = new byte[10 * MIB + 3];
        for (int i = 0; i < state.length; i++) {
            state[i] = (byte) (i * 31);
        }
        List<KeyGroupState> pieces = StatePieces.cut(7, ByteString.copyFrom(state));

        assertEquals(3, pieces.size());
        ByteString joined = ByteString.EMPTY;
        for (int i = 0; i < pieces.size(); i++) {
            KeyGroupState piece = pieces.get(i);
            assertEquals(7, piece.getKeyGroup());
            assertTrue(piece.getState().size() <= GrpcChannels.MESSAGE_BUDGET_BYTES);
            assertEquals(i < pieces.size() - 1, piece.getContinued(), "continued on all but the last piece");
            joined = joined.concat(piece.getState());
        }
        assertEquals(ByteString.copyFrom(state), joined);
    }

    @Test
    void theStateOfAStreamThatIsNotKeyedHasNoKeyGroupAndAnEmptyStateIsOnePiece() {
        List<KeyGroupState> pieces = StatePieces.cut(null, ByteString.EMPTY);

        assertEquals(1, pieces.size());
        assertFalse(pieces.get(0).hasKeyGroup());
        assertFalse(pieces.get(0).getContinued());
    }

    @Test
    void smallPiecesShareAMessageAndNoMessageExceedsTheLimitUnlessOnePieceDoes() {
        List<KeyGroupState> pieces = new ArrayList<>();
        for (int keyGroup = 0; keyGroup < 100; keyGroup++) {
            pieces.addAll(StatePieces.cut(keyGroup, ByteString.copyFrom(new byte[100 * 1024])));
        }
        pieces.addAll(StatePieces.cut(100, ByteString.copyFrom(new byte[9 * MIB])));

        List<List<KeyGroupState>> messages = StatePieces.pack(pieces);

        assertEquals(pieces, messages.stream().flatMap(List::stream).toList(), "every piece once, in order");
        for (List<KeyGroupState> message : messages) {
            assertTrue(message.stream().mapToInt(piece -> piece.getState().size()).sum()
                    <= GrpcChannels.MESSAGE_BUDGET_BYTES);
        }
        // 10 MB of small states in 4 MiB messages, then the large one's three pieces
        assertEquals(3 + 3, messages.size());
    }
}
