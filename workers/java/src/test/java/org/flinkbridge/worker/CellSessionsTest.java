package org.flinkbridge.worker;

import com.google.protobuf.ByteString;
import io.grpc.StatusRuntimeException;
import org.flinkbridge.proto.control.CellDeclaration;
import org.flinkbridge.proto.control.CellKind;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.proto.control.OpenSessionResponse;
import org.flinkbridge.proto.control.ProtocolVersion;
import org.flinkbridge.proto.control.SnapshotStateRequest;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.proto.control.TransportKind;
import org.flinkbridge.proto.data.CellContent;
import org.flinkbridge.proto.data.CellEntry;
import org.flinkbridge.proto.data.CellOp;
import org.flinkbridge.proto.data.CellWrite;
import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.protocol.FrameType;
import org.flinkbridge.transport.grpc.CellFrames;
import org.flinkbridge.transport.grpc.StatePieces;
import org.flinkbridge.worker.SessionBridge.Answer;
import org.flinkbridge.worker.SessionBridge.Transport;
import org.flinkbridge.worker.steps.CellsStep;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.flinkbridge.worker.SessionBridge.bs;
import static org.flinkbridge.worker.SessionBridge.request;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Keyed sessions whose step keeps cells (docs/protocol.md, "Cells"), over a ring and over the gRPC stream, played as a
 * bridge plays them: LOADs before a key's first record, records with their keys, and barriers answered with the
 * changed cells' CELL_WRITES before the end marker.
 */
class CellSessionsTest extends WorkerServerFixture {

    private SessionBridge bridge;

    @AfterEach
    void stop() throws Exception {
        if (bridge != null) {
            bridge.close();
        }
    }

    private static StepSpec cellsStep() {
        return StepSpec.newBuilder().setName("cells").setType(CellsStep.class.getName()).build();
    }

    private SessionBridge open(Transport transport) throws IOException {
        return open(transport, cellsStep());
    }

    /** A keyed session of {@code step}, played on {@code transport}. */
    private SessionBridge open(Transport transport, StepSpec step) throws IOException {
        bridge = SessionBridge.open(transport, rings, channel, control, step);
        return bridge;
    }

    private static KeyCells load(String key, CellContent... contents) {
        return KeyCells.newBuilder().setKey(bs(key)).addAllCells(List.of(contents)).build();
    }

    private static CellContent total(String value) {
        return CellContent.newBuilder().setCell(0).setValue(bs(value)).build();
    }

    private static CellContent seen(String... keys) {
        CellContent.Builder content = CellContent.newBuilder().setCell(1);
        for (String key : keys) {
            content.addEntries(CellEntry.newBuilder().setKey(bs(key)).setValue(ByteString.copyFrom(new byte[] {1})));
        }
        return content.build();
    }

    private static CellWrite write(int cell, CellOp op, String entryKey, ByteString value) {
        CellWrite.Builder write = CellWrite.newBuilder().setCell(cell).setOp(op);
        if (entryKey != null) {
            write.setEntryKey(bs(entryKey));
        }
        if (value != null) {
            write.setValue(value);
        }
        return write.build();
    }

    private static Answer output(long sequence, String text) {
        return new Answer(FrameType.OUTPUT, sequence, text, null);
    }

    private static Answer end(long sequence) {
        return new Answer(FrameType.END_OF_OUTPUTS, sequence, null, null);
    }

    private static Answer cellWrites(long sequence, KeyCells cells) {
        return new Answer(FrameType.CELL_WRITES, sequence, null, cells);
    }

    /** CellsStep's writes of {@code key} at a barrier: its total SET, and the entry {@code seen} PUT in its map. */
    private static Answer totalAndSeen(long sequence, String key, String total, String seen, long residentBytes) {
        return cellWrites(sequence, KeyCells.newBuilder().setKey(bs(key))
                .addWrites(write(0, CellOp.CELL_OP_SET, null, bs(total)))
                .addWrites(write(1, CellOp.CELL_OP_PUT, seen, ByteString.copyFrom(new byte[] {1})))
                .setResidentBytes(residentBytes).build());
    }

    @Test
    void theResponseListsEveryCellInStepThenDeclarationOrder() {
        OpenSessionResponse opened = control.openSession(request(true, cellsStep(),
                StepSpec.newBuilder().setName("again").setType(CellsStep.class.getName()).build())
                .setTransport(TransportKind.TRANSPORT_KIND_GRPC).build());

        assertEquals(List.of(declaration("cells", "total", CellKind.CELL_KIND_VALUE),
                declaration("cells", "seen", CellKind.CELL_KIND_MAP),
                declaration("again", "total", CellKind.CELL_KIND_VALUE),
                declaration("again", "seen", CellKind.CELL_KIND_MAP)), opened.getCellsList());
        assertEquals(ProtocolVersion.PROTOCOL_VERSION_CURRENT, opened.getProtocolVersion());
    }

    private static CellDeclaration declaration(String step, String name, CellKind kind) {
        return CellDeclaration.newBuilder().setStep(step).setName(name).setKind(kind).build();
    }

    @Test
    void aSessionThatIsNotKeyedWhoseStepsDeclareCellsIsRefusedNamingTheStepAndCell() {
        SessionBridge.assertRefusedUnkeyed(control, ": step 'cells' declares cell 'total', but the session is not "
                + "keyed: cells live under the record's key: key the segment with bridge.key", cellsStep());
        assertEquals(0, server.openSessions());
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void loadsThenRecordsThenABarrierAnsweredWithExactlyTheChangedCells(Transport transport) throws Exception {
        SessionBridge bridge = open(transport);
        bridge.clock(0, 1_000);
        bridge.load(1, load("a", total("10"), seen("x")));
        bridge.record(1, 3, "a", "add 5 y");
        bridge.load(2, load("b"));
        bridge.record(2, 7, "b", "add 1 z");
        bridge.record(3, 3, "a", "add 2 y");
        bridge.load(4, load("c", total("100")));
        bridge.record(4, 9, "c", "clear");
        bridge.load(5, load("d", total("4")));
        bridge.record(5, 9, "d", "add 0 w");
        bridge.barrier(6, 1);
        bridge.record(7, 3, "a", "add 1 y");
        bridge.barrier(8, 2);
        bridge.barrier(9, 3);

        assertEquals(List.of(
                end(0),
                output(1, "total=15 seen=2"), end(1),
                output(2, "total=1 seen=1"), end(2),
                output(3, "total=17 seen=2"), end(3),
                output(4, "total=none seen=0"), end(4),
                output(5, "total=4 seen=1"), end(5),
                totalAndSeen(6, "a", "17", "y", 2 + 2 + 2),
                totalAndSeen(6, "b", "1", "z", 1 + 2),
                cellWrites(6, KeyCells.newBuilder().setKey(bs("c"))
                        .addWrites(write(0, CellOp.CELL_OP_CLEAR, null, null)).build()),
                totalAndSeen(6, "d", "4", "w", 1 + 2),
                end(6),
                output(7, "total=18 seen=2"), end(7),
                totalAndSeen(8, "a", "18", "y", 2 + 2 + 2),
                end(8),
                end(9)), bridge.receive(21));
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void aRecordOfAKeyThatIsNotResidentIsAnErrorNamingTheKey(Transport transport) throws Exception {
        SessionBridge bridge = open(transport);
        bridge.load(0, load("a"));
        bridge.record(0, 3, "a", "add 1 x");
        bridge.record(1, 3, "never-loaded", "add 1 x");
        bridge.record(2, 3, "a", "add 1 x");

        List<Answer> answers = bridge.receive(4);
        assertEquals(List.of(output(0, "total=1 seen=1"), end(0)), answers.subList(0, 2));
        assertEquals(FrameType.ERROR, answers.get(2).type());
        assertEquals(1, answers.get(2).sequence());
        assertTrue(answers.get(2).text().startsWith("java.lang.IllegalStateException: input #1: the key "
                + "'never-loaded' is not resident in this session"), answers.get(2).text());
        assertEquals(FrameType.ERROR, answers.get(3).type());
        assertTrue(answers.get(3).text().startsWith("session already failed"), answers.get(3).text());
    }

    /** A LOAD gets no answer of its own: one that cannot be taken fails its record, and the session with it. */
    @ParameterizedTest
    @EnumSource(Transport.class)
    void aLoadNamingACellTheStepsDoNotDeclareFailsItsRecord(Transport transport) throws Exception {
        SessionBridge bridge = open(transport);
        bridge.load(0, load("a", CellContent.newBuilder().setCell(5).setValue(bs("v")).build()));
        bridge.record(0, 1, "a", "add 1 x");

        Answer error = bridge.receive(1).getFirst();
        assertEquals(FrameType.ERROR, error.type(), error.toString());
        assertEquals(0, error.sequence());
        assertTrue(error.text().contains("input #0: a LOAD of key 'a' names cell 5, but the session's steps declare 2"
                + " cells"), error.text());
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void aLoadNotFollowedByItsRecordIsAnError(Transport transport) throws Exception {
        SessionBridge bridge = open(transport);
        bridge.load(0, load("a"));
        bridge.barrier(1, 1);

        Answer error = bridge.receive(1).getFirst();
        assertEquals(FrameType.ERROR, error.type(), error.toString());
        assertEquals(1, error.sequence());
        assertTrue(error.text().contains("a LOAD came as part of input #0, but input #1 is no record"), error.text());
    }

    /** A key whose writes pass what a frame holds is written back in several frames, in order. */
    @ParameterizedTest
    @EnumSource(Transport.class)
    void largeWritesAreSplitOverFramesUnderTheFrameLimit(Transport transport) throws Exception {
        SessionBridge bridge = open(transport);
        // 40 entries of 200 bytes on a 4 KiB ring; 6 entries of 1 MiB on the stream, whose frames hold 4 MiB.
        int entries = transport == Transport.SHM ? 40 : 6;
        int size = transport == Transport.SHM ? 200 : 1 << 20;
        bridge.load(0, load("big"));
        bridge.record(0, 1, "big", "fill " + entries + " " + size);
        bridge.barrier(1, 1);

        assertEquals(List.of(output(0, "total=none seen=" + entries), end(0)), bridge.receive(2));
        List<CellWrite> writes = new ArrayList<>();
        // Entries f0 .. f{entries-1}: their keys' lengths and their values'.
        long resident = 0;
        for (int i = 0; i < entries; i++) {
            resident += ("f" + i).length() + size;
        }
        int frames = 0;
        for (Answer answer = bridge.receive(1).getFirst(); answer.type() != FrameType.END_OF_OUTPUTS;
             answer = bridge.receive(1).getFirst()) {
            assertEquals(FrameType.CELL_WRITES, answer.type(), answer.toString());
            assertEquals(1, answer.sequence());
            assertEquals(bs("big"), answer.cells().getKey());
            assertEquals(resident, answer.cells().getResidentBytes(), "every piece of the key's writes");
            assertTrue(answer.cells().getSerializedSize() <= bridge.maxCellFrameBytes(),
                    answer.cells().getSerializedSize() + " bytes");
            writes.addAll(answer.cells().getWritesList());
            frames++;
        }
        assertTrue(frames >= 2, "CELL_WRITES frames: " + frames);
        assertEquals(entries, writes.size());
        for (CellWrite write : writes) {
            assertEquals(CellOp.CELL_OP_PUT, write.getOp());
            assertEquals(size, write.getValue().size());
        }
    }

    /** A bridge cuts a key too large for one LOAD into several of the same input: the worker adds them up. */
    @ParameterizedTest
    @EnumSource(Transport.class)
    void aKeyLoadedInSeveralFramesHasAllOfThem(Transport transport) throws Exception {
        SessionBridge bridge = open(transport);
        CellContent.Builder many = CellContent.newBuilder().setCell(1);
        for (int i = 0; i < 100; i++) {
            many.addEntries(CellEntry.newBuilder().setKey(bs("e" + i)).setValue(ByteString.copyFrom(new byte[50])));
        }
        List<KeyCells> pieces = CellFrames.cut(load("k", total("3"), many.build()), 2_000);
        assertTrue(pieces.size() > 2, pieces.size() + " pieces");
        for (KeyCells piece : pieces) {
            bridge.load(0, piece);
        }
        bridge.record(0, 1, "k", "add 1 e5");

        assertEquals(List.of(output(0, "total=4 seen=100"), end(0)), bridge.receive(2));
    }

    private static Answer error(Answer answer, long sequence, String start) {
        assertEquals(FrameType.ERROR, answer.type(), answer.toString());
        assertEquals(sequence, answer.sequence());
        assertTrue(answer.text().startsWith(start), answer.text());
        return answer;
    }

    /**
     * A barrier naming keys to evict is answered as always (the evicted key's writes included), then the worker drops
     * them: a later LOAD of such a key is what its cells hold (nothing of before), a key not resident is ignored, and
     * a record of an evicted key without a LOAD is the usual not-resident error.
     */
    @ParameterizedTest
    @EnumSource(Transport.class)
    void aBarrierEvictsKeysOnceAnsweredAndTheirNextRecordNeedsALoad(Transport transport) throws Exception {
        SessionBridge bridge = open(transport);
        bridge.load(0, load("a", total("10"), seen("x")));
        bridge.record(0, 3, "a", "add 1 y");
        bridge.load(1, load("b"));
        bridge.record(1, 3, "b", "add 2 z");
        bridge.barrier(2, 1, "a", "never-resident");
        bridge.record(3, 3, "b", "add 1 z");
        bridge.load(4, load("a", total("50")));
        bridge.record(4, 3, "a", "add 1 q");
        bridge.barrier(5, 2, "a");
        bridge.record(6, 3, "a", "add 1 q");

        assertEquals(List.of(
                output(0, "total=11 seen=2"), end(0),
                output(1, "total=2 seen=1"), end(1),
                totalAndSeen(2, "a", "11", "y", 2 + 2 + 2),
                totalAndSeen(2, "b", "2", "z", 1 + 2),
                end(2),
                output(3, "total=3 seen=1"), end(3),
                output(4, "total=51 seen=1"), end(4),
                totalAndSeen(5, "b", "3", "z", 1 + 2),
                totalAndSeen(5, "a", "51", "q", 2 + 2),
                end(5)), bridge.receive(14));
        error(bridge.receive(1).getFirst(), 6, "java.lang.IllegalStateException: input #6: the key 'a' is not "
                + "resident in this session: the bridge sent no LOAD of its cells before this record");
    }

    /** A barrier evicting a key that is not resident, or with no cell declared touched, is answered as any other. */
    @ParameterizedTest
    @EnumSource(Transport.class)
    void evictingKeysThatAreNotResidentChangesNothing(Transport transport) throws Exception {
        SessionBridge bridge = open(transport);
        bridge.barrier(0, 1, "x", "", "y");
        bridge.load(1, load("x", total("1")));
        bridge.record(1, 3, "x", "add 1 e");

        assertEquals(List.of(end(0), output(1, "total=2 seen=1"), end(1)), bridge.receive(3));
    }

    /**
     * Over shm a key length in a BARRIER that runs past its body (or is negative, or cut short) is a corrupt frame:
     * the session ends, the worker closing its ring, without answering the barrier.
     */
    @ParameterizedTest
    @ValueSource(ints = {6, -1, Integer.MAX_VALUE})
    void aBarrierWhoseEvictLengthRunsPastItsBodyEndsTheShmSession(int keyLength) throws Exception {
        SessionBridge.Shm bridge = (SessionBridge.Shm) open(Transport.SHM);
        bridge.load(0, load("a"));
        bridge.record(0, 3, "a", "add 1 x");
        assertEquals(List.of(output(0, "total=1 seen=1"), end(0)), bridge.receive(2));
        // One key "a", then a length of keyLength with 5 bytes after it ("bcdef").
        ByteBuffer body = ByteBuffer.allocate(8 + 4 + 1 + 4 + 5).order(ByteOrder.LITTLE_ENDIAN).putLong(1)
                .putInt(1).put((byte) 'a').putInt(keyLength).put("bcdef".getBytes(StandardCharsets.UTF_8));
        bridge.rawFrame(FrameType.BARRIER, 1, body.array());

        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (server.openSessions() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(0, server.openSessions(), "the session still open 10 s after its corrupt BARRIER");
        assertEquals("the worker closed the ring", bridge.ring.peerGone());
        bridge.take();
        assertEquals(List.of(), bridge.received, "no answer to the corrupt barrier");
    }

    /** A BARRIER too short for its checkpoint id, or ending inside a key's length, is corrupt too. */
    @Test
    void aBarrierBodyCutShortIsNamedAsCorrupt() {
        MemorySegment tooShort = MemorySegment.ofArray(new byte[4]);
        Exception noId = assertThrows(IOException.class, () -> ShmSessionLoop.evicted("s", 7, tooShort, 0, 4));
        assertEquals("s: a BARRIER frame of 4 body bytes (input #7)", noId.getMessage());

        MemorySegment cutLength = MemorySegment.ofArray(new byte[10]);
        Exception cut = assertThrows(IOException.class, () -> ShmSessionLoop.evicted("s", 7, cutLength, 0, 10));
        assertEquals("s: a BARRIER frame (input #7) of 10 body bytes ends inside the length of a key to evict, at "
                + "byte 8", cut.getMessage());

        byte[] past = ByteBuffer.allocate(14).order(ByteOrder.LITTLE_ENDIAN).putLong(1).putInt(3).array();
        Exception runsPast = assertThrows(IOException.class,
                () -> ShmSessionLoop.evicted("s", 7, MemorySegment.ofArray(past), 0, 14));
        assertEquals("s: a BARRIER frame (input #7) of 14 body bytes names a key to evict of 3 bytes at byte 12, "
                + "where 2 are left", runsPast.getMessage());
    }

    /** The keys a BARRIER body names, in order, an empty key among them; none after a bare checkpoint id. */
    @Test
    void aBarrierBodyNamesItsKeysInOrder() throws IOException {
        byte[] bare = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(3).array();
        assertEquals(List.of(), ShmSessionLoop.evicted("s", 1, MemorySegment.ofArray(bare), 0, 8));

        // At an offset in a larger segment, as in a ring, with bytes after the body that are not its.
        byte[] ring = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN).position(16).putLong(3)
                .putInt(2).put(b("ab")).putInt(0).putInt(1).put(b("c")).putInt(99).array();
        List<byte[]> keys = ShmSessionLoop.evicted("s", 1, MemorySegment.ofArray(ring), 16, 8 + 6 + 4 + 5);
        assertEquals(List.of("ab", "", "c"), keys.stream().map(k -> new String(k, StandardCharsets.UTF_8)).toList());
    }

    private static byte[] b(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    // running_count in a keyed session: its counts in the map cell 'counts' (docs/steps.md).

    private static StepSpec runningCount() {
        return StepSpec.newBuilder().setName("count").setType("running_count")
                .setConfigJson("{\"key_json_field\":\"user\"}").build();
    }

    /** A count as running_count keeps it in its cell: 8 bytes, little-endian. */
    private static ByteString count(long count) {
        return ByteString.copyFrom(ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN).putLong(count)
                .array());
    }

    private static CellContent counts(String key, long count) {
        return CellContent.newBuilder().setCell(0).addEntries(CellEntry.newBuilder().setKey(bs(key))
                .setValue(count(count))).build();
    }

    private static String user(String key) {
        return "{\"user\":\"" + key + "\"}";
    }

    private static String counted(String key, long count) {
        return "{\"key\":\"" + key + "\",\"count\":" + count + "}";
    }

    @Test
    void runningCountDeclaresItsCountsCellInAKeyedSessionOnly() {
        OpenSessionResponse keyed = control.openSession(request(true, runningCount())
                .setTransport(TransportKind.TRANSPORT_KIND_GRPC).build());
        OpenSessionResponse unkeyed = control.openSession(request(false, runningCount())
                .setTransport(TransportKind.TRANSPORT_KIND_GRPC).build());

        assertEquals(List.of(declaration("count", "counts", CellKind.CELL_KIND_MAP)), keyed.getCellsList());
        assertEquals(0, keyed.getCells(0).getTtlMs());
        assertEquals(List.of(), unkeyed.getCellsList());
    }

    @Test
    void batchDeclaresItsBatchCellAndTimersInAKeyedSessionOnly() {
        assertCellAndTimersInAKeyedSessionOnly(StepSpec.newBuilder().setName("b").setType("batch")
                .setConfigJson("{\"max_count\":3}").build(), declaration("b", "batch", CellKind.CELL_KIND_VALUE));
    }

    @Test
    void countDeclaresItsWindowsCellAndTimersInAKeyedSessionOnly() {
        assertCellAndTimersInAKeyedSessionOnly(StepSpec.newBuilder().setName("c").setType("count")
                .setConfigJson("{\"window_ms\":10}").build(), declaration("c", "windows", CellKind.CELL_KIND_MAP));
    }

    /** A built-in step that keeps its state in cells only in a keyed session: its one cell, no TTL, and timers. */
    private void assertCellAndTimersInAKeyedSessionOnly(StepSpec step, CellDeclaration cell) {
        OpenSessionResponse keyed = control.openSession(request(true, step)
                .setTransport(TransportKind.TRANSPORT_KIND_GRPC).build());
        OpenSessionResponse unkeyed = control.openSession(request(false, step)
                .setTransport(TransportKind.TRANSPORT_KIND_GRPC).build());

        assertEquals(List.of(cell), keyed.getCellsList());
        assertEquals(0, keyed.getCells(0).getTtlMs());
        assertTrue(keyed.getTimers());
        assertEquals(List.of(), unkeyed.getCellsList());
        assertFalse(unkeyed.getTimers());
    }

    /**
     * A loaded count goes on, a key never counted starts at 1, and the barrier writes back each key's count (PUT, i64
     * little-endian) with its resident bytes; the step keeps no whole-instance state.
     */
    @ParameterizedTest
    @EnumSource(Transport.class)
    void runningCountKeepsItsCountsInCellsInAKeyedSession(Transport transport) throws Exception {
        SessionBridge bridge = open(transport, runningCount());
        assertEquals(List.of(declaration("count", "counts", CellKind.CELL_KIND_MAP)), bridge.opened().getCellsList());
        bridge.load(0, load("a", counts("a", 5)));
        bridge.record(0, 3, "a", user("a"));
        bridge.load(1, load("b"));
        bridge.record(1, 7, "b", user("b"));
        bridge.record(2, 3, "a", user("a"));
        bridge.barrier(3, 1);
        bridge.barrier(4, 2);

        assertEquals(List.of(
                output(0, counted("a", 6)), end(0),
                output(1, counted("b", 1)), end(1),
                output(2, counted("a", 7)), end(2),
                cellWrites(3, KeyCells.newBuilder().setKey(bs("a"))
                        .addWrites(write(0, CellOp.CELL_OP_PUT, "a", count(7))).setResidentBytes(1 + 8).build()),
                cellWrites(3, KeyCells.newBuilder().setKey(bs("b"))
                        .addWrites(write(0, CellOp.CELL_OP_PUT, "b", count(1))).setResidentBytes(1 + 8).build()),
                end(3),
                end(4)), bridge.receive(10));
        assertEquals(List.of(), snapshot(bridge.opened().getSessionId()), "whole-instance state");
    }

    /** The brief's case: a LOAD giving "a" the count 5, a record of "a" counts 6, the barrier writes back a -> 6. */
    @ParameterizedTest
    @EnumSource(Transport.class)
    void aLoadedCountOfFiveGoesOnAtSixAndIsWrittenBack(Transport transport) throws Exception {
        SessionBridge bridge = open(transport, runningCount());
        bridge.load(0, load("a", counts("a", 5)));
        bridge.record(0, 3, "a", user("a"));
        bridge.barrier(1, 1);

        assertEquals(List.of(output(0, counted("a", 6)), end(0),
                cellWrites(1, KeyCells.newBuilder().setKey(bs("a"))
                        .addWrites(write(0, CellOp.CELL_OP_PUT, "a", count(6))).setResidentBytes(9).build()),
                end(1)), bridge.receive(4));
    }

    /** A count in the cell that is not 8 bytes fails the record, naming the step, the cell and the key. */
    @ParameterizedTest
    @EnumSource(Transport.class)
    void aCountCellThatIsNotEightBytesFailsTheRecord(Transport transport) throws Exception {
        SessionBridge bridge = open(transport, runningCount());
        bridge.load(0, load("a", CellContent.newBuilder().setCell(0).addEntries(CellEntry.newBuilder()
                .setKey(bs("a")).setValue(bs("5"))).build()));
        bridge.record(0, 3, "a", user("a"));

        error(bridge.receive(1).getFirst(), 0, "java.io.IOException: step 'count' (running_count): cell 'counts' "
                + "holds 1 bytes for key 'a', not a count");
    }

    /**
     * A checkpoint taken before running_count kept its counts in cells holds them as whole-instance state: a keyed
     * session refuses to restore it, naming the step and why, rather than drop the counts.
     */
    @Test
    void runningCountRefusesWholeInstanceStateInAKeyedSession() throws Exception {
        // SegmentChain's encoding of one step's state, running_count's CountsState: version 2, one count, "a" -> 5.
        ByteBuffer counts = ByteBuffer.allocate(1 + 4 + 4 + 1 + 8).put((byte) 2).putInt(1).putInt(1).put((byte) 'a')
                .putLong(5);
        ByteBuffer chain = ByteBuffer.allocate(4 + 4 + counts.capacity()).putInt(1).putInt(counts.capacity())
                .put(counts.array());
        List<KeyGroupState> pieces = List.of(KeyGroupState.newBuilder().setKeyGroup(3)
                .setState(ByteString.copyFrom(chain.array())).build());

        String keyed = control.openSession(request(true, runningCount())
                .setTransport(TransportKind.TRANSPORT_KIND_GRPC).build()).getSessionId();
        StatusRuntimeException refused = assertThrows(StatusRuntimeException.class,
                () -> StatePieces.restore(channel, keyed, pieces, 10_000));
        String text = refused.getStatus().getDescription();
        assertTrue(text.contains("step 'count' (running_count) is given ") && text.contains("in a keyed session its "
                + "counts live in cells (map cell 'counts') since protocol 5, so such a checkpoint cannot be restored "
                + "into it"), text);

        // The same state restores into a session that is not keyed, where the counts are still the step's state.
        String unkeyed = control.openSession(request(false, runningCount())
                .setTransport(TransportKind.TRANSPORT_KIND_GRPC).build()).getSessionId();
        StatePieces.restore(channel, unkeyed, pieces, 10_000);
        assertEquals(List.of(chain.array().length), snapshot(unkeyed).stream().map(piece -> piece.getState().size())
                .toList());
    }

    private List<KeyGroupState> snapshot(String sessionId) {
        List<KeyGroupState> pieces = new ArrayList<>();
        control.snapshotState(SnapshotStateRequest.newBuilder().setSessionId(sessionId).setCheckpointId(1).build())
                .forEachRemaining(response -> pieces.addAll(response.getStatesList()));
        return pieces;
    }
}
