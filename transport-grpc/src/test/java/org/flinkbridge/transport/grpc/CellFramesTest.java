package org.flinkbridge.transport.grpc;

import com.google.protobuf.ByteString;
import org.flinkbridge.proto.data.CellContent;
import org.flinkbridge.proto.data.CellEntry;
import org.flinkbridge.proto.data.CellOp;
import org.flinkbridge.proto.data.CellWrite;
import org.flinkbridge.proto.data.KeyCells;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CellFramesTest {

    private static final ByteString KEY = ByteString.copyFromUtf8("user-1");

    private static ByteString bytes(int size, int fill) {
        byte[] value = new byte[size];
        java.util.Arrays.fill(value, (byte) fill);
        return ByteString.copyFrom(value);
    }

    @Test
    void keyCellsThatFitAreOneFrame() {
        KeyCells whole = KeyCells.newBuilder().setKey(KEY)
                .addWrites(CellWrite.newBuilder().setCell(0).setOp(CellOp.CELL_OP_SET).setValue(bytes(10, 1)))
                .build();

        assertEquals(List.of(whole), CellFrames.cut(whole, 4096));
    }

    @Test
    void writesAreCutInTheirOrderEachPieceWithTheKeyAndUnderTheLimit() {
        KeyCells.Builder whole = KeyCells.newBuilder().setKey(KEY)
                .addWrites(CellWrite.newBuilder().setCell(1).setOp(CellOp.CELL_OP_CLEAR));
        for (int i = 0; i < 100; i++) {
            whole.addWrites(CellWrite.newBuilder().setCell(1).setOp(CellOp.CELL_OP_PUT)
                    .setEntryKey(ByteString.copyFromUtf8("k" + i)).setValue(bytes(100, i)));
        }

        List<KeyCells> pieces = CellFrames.cut(whole.build(), 1000);

        assertTrue(pieces.size() >= 10, pieces.size() + " pieces");
        List<CellWrite> again = new ArrayList<>();
        for (KeyCells piece : pieces) {
            assertEquals(KEY, piece.getKey());
            assertTrue(piece.getSerializedSize() <= 1000, piece.getSerializedSize() + " bytes");
            again.addAll(piece.getWritesList());
        }
        assertEquals(whole.getWritesList(), again);
    }

    /** A map too large for a frame goes in parts of its entries; together they are the whole map. */
    @Test
    void aLargeMapIsCutByEntryAndAValueCellStaysWhole() {
        CellContent.Builder map = CellContent.newBuilder().setCell(2);
        for (int i = 0; i < 50; i++) {
            map.addEntries(CellEntry.newBuilder().setKey(ByteString.copyFromUtf8("e" + i)).setValue(bytes(90, i)));
        }
        KeyCells whole = KeyCells.newBuilder().setKey(KEY)
                .addCells(CellContent.newBuilder().setCell(0).setValue(bytes(300, 9)))
                .addCells(map)
                .build();

        List<KeyCells> pieces = CellFrames.cut(whole, 1024);

        assertTrue(pieces.size() > 4, pieces.size() + " pieces");
        Map<Integer, List<CellEntry>> entries = new LinkedHashMap<>();
        List<ByteString> values = new ArrayList<>();
        for (KeyCells piece : pieces) {
            assertTrue(piece.getSerializedSize() <= 1024, piece.getSerializedSize() + " bytes");
            for (CellContent content : piece.getCellsList()) {
                if (content.hasValue()) {
                    values.add(content.getValue());
                }
                entries.computeIfAbsent(content.getCell(), cell -> new ArrayList<>()).addAll(content.getEntriesList());
            }
        }
        assertEquals(List.of(bytes(300, 9)), values);
        assertEquals(map.getEntriesList(), entries.get(2));
    }

    @Test
    void aValueOrWriteThatCannotFitAFrameByItselfIsRefusedNamingTheCell() {
        KeyCells value = KeyCells.newBuilder().setKey(KEY)
                .addCells(CellContent.newBuilder().setCell(3).setValue(bytes(5000, 1))).build();
        KeyCells write = KeyCells.newBuilder().setKey(KEY)
                .addWrites(CellWrite.newBuilder().setCell(4).setOp(CellOp.CELL_OP_SET).setValue(bytes(5000, 1)))
                .build();

        Exception tooLargeValue = assertThrows(IllegalArgumentException.class, () -> CellFrames.cut(value, 4096));
        Exception tooLargeWrite = assertThrows(IllegalArgumentException.class, () -> CellFrames.cut(write, 4096));

        assertTrue(tooLargeValue.getMessage().startsWith("a value of cell 3 takes 50"), tooLargeValue.getMessage());
        assertTrue(tooLargeWrite.getMessage().startsWith("a CELL_OP_SET write of cell 4 takes 50"),
                tooLargeWrite.getMessage());
    }

    @Test
    void aBodyThatIsNoKeyCellsIsAnIOException() throws IOException {
        KeyCells whole = KeyCells.newBuilder().setKey(KEY).build();
        assertEquals(whole, CellFrames.parse(whole.toByteArray()));
        assertThrows(IOException.class, () -> CellFrames.parse(new byte[] {(byte) 0xff, (byte) 0xff, 0x01}));
    }
}
