package org.flinkbridge.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import org.flinkbridge.conformance.WorkerUnderTest.KitTransport;
import org.flinkbridge.conformance.WorkerUnderTest.Session;
import org.flinkbridge.proto.control.CellDeclaration;
import org.flinkbridge.proto.control.CellKind;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.proto.data.CellContent;
import org.flinkbridge.proto.data.CellEntry;
import org.flinkbridge.proto.data.CellOp;
import org.flinkbridge.proto.data.CellWrite;
import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.protocol.FrameType;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import static org.flinkbridge.conformance.Report.require;

/**
 * The cells points (docs/protocol.md, "Cells"), on each transport: {@code running_count} in a keyed session keeps its
 * counts in one map cell {@code counts} (docs/steps.md), so the kit plays the bridge's side of cells with it:
 * declarations in the OpenSession response, a LOAD before a key's first record, the write-back at a barrier, eviction,
 * and a new session loading what was written back.
 */
final class CellPoints {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long ANSWER_MILLIS = 20_000;
    static final StepSpec COUNT = StepSpec.newBuilder().setName("count").setType("running_count")
            .setConfigJson("{\"key_json_field\":\"user\"}").build();
    /** The cell running_count declares in a keyed session. */
    private static final String CELL = "counts";
    /** The key the points count, and the Flink key group the kit routes it to. */
    private static final String KEY = "a";
    private static final int KEY_GROUP = 11;
    /** A key no LOAD is sent for: distinct enough that an error naming it can be told from one that does not. */
    private static final String NEVER_LOADED = "kit-key-never-loaded";

    private final WorkerUnderTest worker;
    private final Report report;
    /** The session the load point leaves counting KEY, for the write-back and eviction points; null if it failed. */
    private Session counting;
    /** The id of running_count's cell in it. */
    private int countsCell;

    CellPoints(WorkerUnderTest worker, Report report) {
        this.worker = worker;
        this.report = report;
    }

    void run(KitTransport transport) {
        String over = " (" + transport.flag + ")";
        report.check("cells: declared: a keyed session of running_count lists its map cell 'counts' in the"
                + " OpenSession response" + over, () -> declared(transport));
        try {
            report.check("cells: load before first use: a record of a key with no LOAD is answered with ERROR naming"
                    + " the key; after a LOAD of its count 5 a record counts 6" + over, () -> loadBeforeFirstUse(
                    transport));
            report.check("cells: write-back: a BARRIER is answered with one CELL_WRITES (PUT a -> 6, resident_bytes)"
                    + " then END_OF_OUTPUTS, a BARRIER with no record since with no CELL_WRITES" + over,
                    this::writeBack);
            report.check("cells: eviction: after a BARRIER naming the key to evict, its record without a LOAD is"
                    + " answered with ERROR" + over, this::eviction);
        } finally {
            if (counting != null) {
                closeQuietly(counting);
                counting = null;
            }
        }
        report.check("cells: replay loads again: a new session for the segment, given a LOAD of the count written"
                + " back (6), counts 7" + over, () -> replayLoadsAgain(transport));
    }

    private Session open(KitTransport transport) throws IOException {
        return worker.open(transport, List.of(COUNT), 0, 1, true);
    }

    private void declared(KitTransport transport) throws Exception {
        Session session = open(transport);
        try {
            List<CellDeclaration> cells = session.opened().getCellsList();
            CellDeclaration expected = CellDeclaration.newBuilder().setStep(COUNT.getName()).setName(CELL)
                    .setKind(CellKind.CELL_KIND_MAP).setTtlMs(0).build();
            require(cells.equals(List.of(expected)), "the response lists " + describe(cells) + ", not "
                    + describe(List.of(expected)));
        } finally {
            closeQuietly(session);
        }
    }

    private void loadBeforeFirstUse(KitTransport transport) throws Exception {
        Session unloaded = open(transport);
        try {
            unloaded.data().record(0, KEY_GROUP, bytes(NEVER_LOADED), user(NEVER_LOADED));
            List<Answer> answers = unloaded.data().answersThrough(0, ANSWER_MILLIS);
            require(answers.size() == 1 && answers.getFirst().type() == FrameType.ERROR, "a record of key '"
                    + NEVER_LOADED + "' with no LOAD before it was answered " + answers + ", not with ERROR");
            require(String.valueOf(answers.getFirst().error()).contains(NEVER_LOADED), "the ERROR does not name the"
                    + " key '" + NEVER_LOADED + "': " + answers.getFirst().error());
        } finally {
            closeQuietly(unloaded);
        }
        Session session = open(transport);
        try {
            countsCell = countsCell(session);
            session.data().load(0, load(KEY, 5));
            session.data().record(0, KEY_GROUP, bytes(KEY), user(KEY));
            requireCount(session.data().answersThrough(0, ANSWER_MILLIS), 0, 6, "after a LOAD of its count 5");
            counting = session;
        } finally {
            if (counting == null) {
                closeQuietly(session);
            }
        }
    }

    private void writeBack() throws Exception {
        Session session = counted();
        session.data().barrier(1, 1, List.of());
        List<Answer> answers = session.data().answersThrough(1, ANSWER_MILLIS);
        require(answers.size() == 2 && answers.get(0).type() == FrameType.CELL_WRITES
                        && answers.get(1).type() == FrameType.END_OF_OUTPUTS,
                "the BARRIER after a record of '" + KEY + "' was answered " + answers + ", not with one CELL_WRITES"
                        + " then END_OF_OUTPUTS");
        KeyCells writes = answers.getFirst().cells();
        CellWrite put = CellWrite.newBuilder().setCell(countsCell).setOp(CellOp.CELL_OP_PUT).setEntryKey(bs(KEY))
                .setValue(count(6)).build();
        require(writes.getKey().equals(bs(KEY)) && writes.getCellsCount() == 0
                        && writes.getWritesList().equals(List.of(put)),
                "the CELL_WRITES is " + oneLine(writes) + ", not key '" + KEY + "' with the one write " + oneLine(put));
        require(writes.getResidentBytes() > 0, "the CELL_WRITES has no resident_bytes");

        session.data().barrier(2, 2, List.of());
        answers = session.data().answersThrough(2, ANSWER_MILLIS);
        require(answers.size() == 1 && answers.getFirst().type() == FrameType.END_OF_OUTPUTS,
                "a BARRIER with no record since the previous one was answered " + answers
                        + ", not with END_OF_OUTPUTS alone");
    }

    private void eviction() throws Exception {
        Session session = counted();
        // KEY is clean and untouched since the write-back's barriers: the bridge may evict it now.
        session.data().barrier(3, 3, List.of(bytes(KEY)));
        List<Answer> answers = session.data().answersThrough(3, ANSWER_MILLIS);
        require(answers.size() == 1 && answers.getFirst().type() == FrameType.END_OF_OUTPUTS,
                "a BARRIER evicting clean key '" + KEY + "' was answered " + answers + ", not with END_OF_OUTPUTS"
                        + " alone");
        session.data().record(4, KEY_GROUP, bytes(KEY), user(KEY));
        answers = session.data().answersThrough(4, ANSWER_MILLIS);
        require(answers.size() == 1 && answers.getFirst().type() == FrameType.ERROR, "a record of evicted key '"
                + KEY + "' with no LOAD was answered " + answers + ", not with ERROR (the key is not resident)");
    }

    private void replayLoadsAgain(KitTransport transport) throws Exception {
        Session session = open(transport);
        try {
            int cell = countsCell(session);
            session.data().load(0, KeyCells.newBuilder().setKey(bs(KEY)).addCells(CellContent.newBuilder()
                    .setCell(cell).addEntries(CellEntry.newBuilder().setKey(bs(KEY)).setValue(count(6)))).build());
            session.data().record(0, KEY_GROUP, bytes(KEY), user(KEY));
            requireCount(session.data().answersThrough(0, ANSWER_MILLIS), 0, 7, "in a new session given a LOAD of"
                    + " its count 6");
        } finally {
            closeQuietly(session);
        }
    }

    /** The session the load point left counting KEY. */
    private Session counted() throws Report.Broken {
        require(counting != null, "no session counts '" + KEY + "': the load point failed");
        return counting;
    }

    /** The id of running_count's map cell in {@code session}: its place in the OpenSession response's cells. */
    private static int countsCell(Session session) throws Report.Broken {
        List<CellDeclaration> cells = session.opened().getCellsList();
        for (int id = 0; id < cells.size(); id++) {
            if (cells.get(id).getStep().equals(COUNT.getName()) && cells.get(id).getName().equals(CELL)) {
                return id;
            }
        }
        throw new Report.Broken("the OpenSession response does not list cell '" + CELL + "' of step '"
                + COUNT.getName() + "': " + describe(cells));
    }

    private KeyCells load(String key, long count) {
        return KeyCells.newBuilder().setKey(bs(key)).addCells(CellContent.newBuilder().setCell(countsCell)
                .addEntries(CellEntry.newBuilder().setKey(bs(key)).setValue(count(count)))).build();
    }

    /** The answers of a record: its one OUTPUT, {@code {"key": KEY, "count": count}}, then its END_OF_OUTPUTS. */
    private static void requireCount(List<Answer> answers, long sequence, long count, String when) throws Exception {
        // Parsed, as the output is: a number node is then of the type the parser gives it.
        JsonNode expected = JSON.readTree("{\"key\":\"" + KEY + "\",\"count\":" + count + "}");
        require(answers.size() == 2 && answers.get(0).type() == FrameType.OUTPUT
                        && answers.get(1).type() == FrameType.END_OF_OUTPUTS,
                "record #" + sequence + " of '" + KEY + "' " + when + " was answered " + answers + ", not with its"
                        + " OUTPUT and END_OF_OUTPUTS");
        JsonNode counted = JSON.readTree(answers.getFirst().output().payload());
        require(counted.equals(expected), "record #" + sequence + " of '" + KEY + "' " + when + " gave "
                + answers.getFirst().output().text() + ", not " + expected);
    }

    /** A count as running_count keeps it in its cell: an i64, little-endian. */
    private static ByteString count(long count) {
        return ByteString.copyFrom(ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN).putLong(count)
                .array());
    }

    private static KitRecord user(String key) {
        return KitRecord.json(JSON.createObjectNode().put("user", key).toString(), 0, Map.of());
    }

    static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    static ByteString bs(String text) {
        return ByteString.copyFromUtf8(text);
    }

    private static String describe(List<CellDeclaration> cells) {
        return cells.stream().map(cell -> "step '" + cell.getStep() + "' cell '" + cell.getName() + "' ("
                + cell.getKind() + ", ttl_ms " + cell.getTtlMs() + ")").toList().toString();
    }

    private static String oneLine(com.google.protobuf.Message message) {
        return "{" + Answer.oneLine(message) + "}";
    }

    private void closeQuietly(Session session) {
        worker.closeQuietly(session);
    }
}
