package org.flinkbridge.transport.grpc;

import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import org.flinkbridge.proto.data.CellContent;
import org.flinkbridge.proto.data.CellEntry;
import org.flinkbridge.proto.data.CellWrite;
import org.flinkbridge.proto.data.KeyCells;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * A key's cells in LOAD and CELL_WRITES frames (protocol 5, docs/protocol.md, "Cells"), for both sides and both
 * transports: a {@link KeyCells} message is the frame's body on a ring (its protobuf encoding) and the frame's
 * {@code cells} on the gRPC stream. A key whose cells do not fit one frame (a frame is at most half the ring; a
 * stream's frame at most {@link GrpcChannels#MESSAGE_BUDGET_BYTES}) goes in several, cut here: the contents of a
 * LOAD by cell and by map entry (a later LOAD of the same input adds to the first), the writes of a CELL_WRITES in
 * their order.
 */
public final class CellFrames {

    /** {@code KeyCells} field numbers, for the sizes of what a piece holds. */
    private static final int CELLS_FIELD = KeyCells.CELLS_FIELD_NUMBER;
    private static final int WRITES_FIELD = KeyCells.WRITES_FIELD_NUMBER;
    private static final int ENTRIES_FIELD = CellContent.ENTRIES_FIELD_NUMBER;

    private CellFrames() {}

    /**
     * {@code whole} as the messages its frames carry, in order, each of at most {@code maxBytes} encoded: itself
     * when it fits.
     *
     * @throws TooLarge naming the cell when one value, entry or write cannot fit a frame by itself
     */
    public static List<KeyCells> cut(KeyCells whole, int maxBytes) {
        if (whole.getSerializedSize() <= maxBytes) {
            return List.of(whole);
        }
        Pieces pieces = new Pieces(whole, maxBytes);
        for (CellContent content : whole.getCellsList()) {
            pieces.add(content);
        }
        for (CellWrite write : whole.getWritesList()) {
            pieces.add(write);
        }
        return pieces.done();
    }

    /** Decodes a frame's body as a ring carries it; an IOException names what is wrong. */
    public static KeyCells parse(byte[] body) throws IOException {
        try {
            return KeyCells.parseFrom(body);
        } catch (InvalidProtocolBufferException e) {
            throw new IOException("a body of " + body.length + " bytes is no KeyCells message: " + e.getMessage(), e);
        }
    }

    /** The pieces of one key's cells, filled in order, each started anew once the next part does not fit. */
    private static final class Pieces {
        private final KeyCells empty;
        private final int base;
        private final int maxBytes;
        private final List<KeyCells> done = new ArrayList<>();
        private KeyCells.Builder piece;
        private int size;

        Pieces(KeyCells whole, int maxBytes) {
            this.empty = whole.toBuilder().clearCells().clearWrites().build();
            this.base = empty.getSerializedSize();
            this.maxBytes = maxBytes;
            start();
        }

        private void start() {
            piece = empty.toBuilder();
            size = base;
        }

        private boolean isEmpty() {
            return piece.getCellsCount() == 0 && piece.getWritesCount() == 0;
        }

        private void flush() {
            if (!isEmpty()) {
                done.add(piece.build());
                start();
            }
        }

        /** Room for a part of {@code bytes} (its tag and length included): in this piece, or in a new one. */
        private boolean room(int bytes) {
            if (size + bytes <= maxBytes) {
                return true;
            }
            flush();
            return size + bytes <= maxBytes;
        }

        void add(CellWrite write) {
            int bytes = CodedOutputStream.computeMessageSize(WRITES_FIELD, write);
            if (!room(bytes)) {
                throw tooLarge("a " + write.getOp() + " write", write.getCell(), bytes);
            }
            piece.addWrites(write);
            size += bytes;
        }

        /** A cell's content whole where it fits; else its entries over as many pieces as they need. */
        void add(CellContent content) {
            int bytes = CodedOutputStream.computeMessageSize(CELLS_FIELD, content);
            if (room(bytes)) {
                piece.addCells(content);
                size += bytes;
                return;
            }
            CellContent head = content.toBuilder().clearEntries().build();
            if (content.getEntriesCount() == 0 || !room(wrapped(head.getSerializedSize()))) {
                throw tooLarge("a value", content.getCell(), bytes);
            }
            // The first part carries the content's value (a map cell has none), the later ones only entries.
            CellContent.Builder part = head.toBuilder();
            int partBytes = head.getSerializedSize();
            CellContent next = CellContent.newBuilder().setCell(content.getCell()).build();
            for (CellEntry entry : content.getEntriesList()) {
                int entryBytes = CodedOutputStream.computeMessageSize(ENTRIES_FIELD, entry);
                if (size + wrapped(partBytes + entryBytes) > maxBytes && part.getEntriesCount() > 0) {
                    piece.addCells(part);
                    size += wrapped(partBytes);
                    flush();
                    part = next.toBuilder();
                    partBytes = next.getSerializedSize();
                }
                if (size + wrapped(partBytes + entryBytes) > maxBytes) {
                    throw tooLarge("a map entry", content.getCell(), entryBytes);
                }
                part.addEntries(entry);
                partBytes += entryBytes;
            }
            piece.addCells(part);
            size += wrapped(partBytes);
        }

        private TooLarge tooLarge(String what, int cell, int bytes) {
            return new TooLarge(cell, what + " of cell " + cell + " takes " + bytes
                    + " bytes encoded, more than a frame holds (" + (maxBytes - base) + " bytes beside its key)");
        }

        List<KeyCells> done() {
            flush();
            return done;
        }
    }

    /** One value, entry or write of a cell that cannot fit a frame by itself. */
    public static final class TooLarge extends IllegalArgumentException {
        private final int cell;

        TooLarge(int cell, String message) {
            super(message);
            this.cell = cell;
        }

        /** The cell's id. */
        public int cell() {
            return cell;
        }
    }

    /** The bytes a {@code CellContent} of {@code bytes} takes in its {@code KeyCells}: tag, length, itself. */
    private static int wrapped(int bytes) {
        return CodedOutputStream.computeTagSize(CELLS_FIELD) + CodedOutputStream.computeUInt32SizeNoTag(bytes) + bytes;
    }
}
