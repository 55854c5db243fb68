package org.flinkbridge.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.flinkbridge.conformance.DataPath.Misbehaviour;
import org.flinkbridge.conformance.DataPath.SessionEnded;
import org.flinkbridge.conformance.WorkerUnderTest.KitTransport;
import org.flinkbridge.conformance.WorkerUnderTest.Session;
import org.flinkbridge.proto.control.BridgeControlGrpc;
import org.flinkbridge.proto.control.HealthRequest;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.proto.control.OnError;
import org.flinkbridge.proto.control.ProtocolVersion;
import org.flinkbridge.proto.control.SessionRef;
import org.flinkbridge.proto.control.ShmRing;
import org.flinkbridge.proto.control.SnapshotStateRequest;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.proto.control.TransportKind;
import org.flinkbridge.protocol.ErrorTexts;
import org.flinkbridge.protocol.InputFailures;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.transport.grpc.ControlSecret;
import org.flinkbridge.transport.grpc.GrpcChannels;
import org.flinkbridge.protocol.FrameType;
import org.flinkbridge.transport.shm.RingFile;
import org.flinkbridge.transport.shm.RingFiles;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import static org.flinkbridge.conformance.Report.require;

/**
 * The contract points of docs/protocol.md that a whole worker (control service and data plane) must keep,
 * checked over the wire with the built-in steps every worker serves ({@code append_field}, {@code running_count}).
 */
record ContractPoints(WorkerUnderTest worker, Report report) {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long ANSWER_MILLIS = 20_000;
    static final StepSpec MARK = StepSpec.newBuilder().setName("mark").setType("append_field")
            .setConfigJson("{\"field\":\"conformance\",\"value\":true}").build();
    private static final StepSpec AGED_BATCH = StepSpec.newBuilder().setName("aged").setType("batch")
            .setConfigJson("{\"max_count\":100,\"max_wait_ms\":10}").build();
    private static final StepSpec COUNT = StepSpec.newBuilder().setName("count").setType("running_count")
            .setConfigJson("{\"key_json_field\":\"key\"}").build();
    /** The count, sending a record without the key to the dead letters. */
    private static final StepSpec COUNT_OR_DEAD_LETTER = COUNT.toBuilder().setOnError(OnError.ON_ERROR_DEAD_LETTER)
            .build();
    /** Over 100 KiB, most of it not ASCII (three bytes for one once percent-encoded in a status). */
    private static final String OVERSIZED = "ünïcödé € ".repeat(10_000);
    private static final Pattern CUT = Pattern.compile(
            " \\.\\.\\. \\[\\d+ bytes cut; the whole text is in the worker's log] \\.\\.\\. ");
    /** Two keys and the key groups the kit routes them to, as Flink would route two keys. */
    private static final int GROUP_A = 11;
    private static final int GROUP_B = 4000;

    /** The points of the control service, which hold whatever the transport. */
    void control(boolean shm) {
        report.check("health: Health answers the worker's id", () -> {
            String id = worker.health().getWorkerId();
            require(!id.isBlank(), "Health answered an empty worker id");
        });
        if (System.getenv(ControlSecret.ENV) != null) {
            report.skip("authentication: a call without the worker's control secret is UNAUTHENTICATED",
                    ControlSecret.ENV + " is set, so the kit has no other secret to try");
        } else {
            report.check("authentication: a call without the worker's control secret is UNAUTHENTICATED", () -> {
                Path elsewhere = Files.createTempDirectory("conformance-secret-");
                ManagedChannel stranger = GrpcChannels.open(worker.address(), ControlSecret.forDirectory(elsewhere));
                try {
                    BridgeControlGrpc.newBlockingStub(stranger).withDeadlineAfter(10, TimeUnit.SECONDS)
                            .health(HealthRequest.getDefaultInstance());
                    throw new Report.Broken("Health answered a caller with another secret");
                } catch (StatusRuntimeException e) {
                    requireCode(e, Status.Code.UNAUTHENTICATED);
                } finally {
                    GrpcChannels.close(stranger);
                    deleteTree(elsewhere);
                }
            });
        }
        report.check("open: protocol version 1 is refused with FAILED_PRECONDITION naming both versions", () -> {
            StatusRuntimeException refused = refusal(WorkerUnderTest.request(List.of(MARK), 0, 1)
                    .setProtocolVersionValue(1).setTransport(TransportKind.TRANSPORT_KIND_GRPC).setToken("t0"));
            requireCode(refused, Status.Code.FAILED_PRECONDITION);
            String text = String.valueOf(refused.getStatus().getDescription());
            require(text.contains("1") && text.contains(Integer.toString(ProtocolVersion.PROTOCOL_VERSION_CURRENT_VALUE)),
                    "the refusal does not name both versions: " + text);
        });
        report.check("open: a step of an unknown type is refused with INVALID_ARGUMENT naming the step", () -> {
            StatusRuntimeException refused = refusal(WorkerUnderTest.request(List.of(StepSpec.newBuilder()
                            .setName("no-such-step-here").setType("no_such_type").setConfigJson("{}").build()), 0, 1)
                    .setTransport(TransportKind.TRANSPORT_KIND_GRPC).setToken("t1"));
            requireCode(refused, Status.Code.INVALID_ARGUMENT);
            require(String.valueOf(refused.getStatus().getDescription()).contains("no-such-step-here"),
                    "the refusal does not name the step: " + refused.getStatus().getDescription());
        });
        report.check("error texts: a step whose config error passes 100 KiB is refused with INVALID_ARGUMENT naming"
                + " the step, the text cut to what the bridge takes", this::oversizedRefusal);
        report.check("sessions: a call for a session the worker does not know is NOT_FOUND", () -> {
            try {
                worker.control().snapshotState(SnapshotStateRequest.newBuilder().setSessionId("no-such-session")
                        .setCheckpointId(1).build()).forEachRemaining(piece -> {});
                throw new Report.Broken("SnapshotState answered for an unknown session");
            } catch (StatusRuntimeException e) {
                requireCode(e, Status.Code.NOT_FOUND);
            }
        });
        report.check("close: CloseSession of an unknown session is acknowledged", () ->
                worker.control().closeSession(SessionRef.newBuilder().setSessionId("no-such-session").build()));
        if (shm) {
            report.check("ring file: a ring outside the worker's ring directory is refused with FAILED_PRECONDITION",
                    this::ringOutsideItsDirectory);
        }
    }

    private void ringOutsideItsDirectory() throws Exception {
        Path elsewhere = Files.createTempDirectory("conformance-ring-");
        try (RingFile ring = RingFile.create(elsewhere.resolve("session-outside" + RingFiles.SUFFIX), 4096, 4096,
                "t2")) {
            StatusRuntimeException refused = refusal(WorkerUnderTest.request(List.of(MARK), 0, 1).setToken("t2")
                    .setTransport(TransportKind.TRANSPORT_KIND_SHM).setRing(ShmRing.newBuilder()
                            .setPath(ring.path().toString()).setToWorkerCapacity(4096).setFromWorkerCapacity(4096)
                            .setLivenessTimeoutMs(2000)));
            requireCode(refused, Status.Code.FAILED_PRECONDITION);
        } finally {
            deleteTree(elsewhere);
        }
    }

    private StatusRuntimeException refusal(org.flinkbridge.proto.control.OpenSessionRequest.Builder request)
            throws Report.Broken {
        try {
            String id = worker.control().openSession(request.build()).getSessionId();
            worker.closeSession(id);
            throw new Report.Broken("the worker opened the session");
        } catch (StatusRuntimeException e) {
            return e;
        }
    }

    /** The points of one transport's data plane, and of state, which travels beside it. */
    void transport(KitTransport transport) {
        String over = " (" + transport.flag + ")";
        report.check("records: each is answered in input order, its outputs before its END_OF_OUTPUTS" + over,
                () -> records(transport));
        report.check("watermarks and barriers: each is answered after every earlier input" + over,
                () -> watermarksAndBarriers(transport));
        report.check("clock: steps read processing time from CLOCK inputs alone, each answered by END_OF_OUTPUTS"
                + over, () -> clock(transport));
        List<KeyGroupState> taken = new ArrayList<>();
        report.check("state: SnapshotState after a barrier gives the state by key group" + over,
                () -> taken.addAll(snapshot(transport)));
        report.check("restore: a session restored from the snapshot continues every key group" + over,
                () -> continues(transport, taken, true));
        report.check("rescale: a session restored with one key group's state continues it, others start afresh"
                + over, () -> continues(transport, only(taken, GROUP_A), false));
        report.check("restore: a key group given twice is refused with INVALID_ARGUMENT" + over, () -> {
            List<KeyGroupState> twice = new ArrayList<>(only(taken, GROUP_A));
            twice.addAll(only(taken, GROUP_A));
            try (Session session = worker.open(transport, List.of(COUNT), 0, 1)) {
                try {
                    worker.restore(session.id(), twice);
                    throw new Report.Broken("the worker took a key group's state twice");
                } catch (StatusRuntimeException e) {
                    requireCode(e, Status.Code.INVALID_ARGUMENT);
                } finally {
                    worker.closeSession(session.id());
                }
            }
        });
        for (Misbehaviour how : Misbehaviour.values()) {
            String point = "bad input: " + how.description + " is answered with ERROR or ends the session, and the"
                    + " worker serves on" + over;
            if (how.carriedBy(transport)) {
                report.check(point, () -> refusesAndServesOn(transport, how));
            } else {
                report.skip(point, "protobuf, not the worker, decodes a record on this transport");
            }
        }
        report.check("failed inputs: a record a dead-letter step fails on is answered with INPUT_FAILED alone, naming"
                + " the step and the error, and the session goes on" + over, () -> deadLetter(transport));
        report.check("failed inputs: a step with on_error fail that fails still answers ERROR" + over,
                () -> failStepStillFails(transport));
        report.check("error texts: a step whose error passes 100 KiB is answered with an ERROR naming the step, the"
                + " text cut to what the bridge takes" + over, () -> oversizedError(transport));
        report.check("bridge gone: a session whose bridge process is killed is ended by the worker" + over,
                () -> bridgeVanishes(transport));
    }

    private void records(KitTransport transport) throws Exception {
        try (Session session = worker.open(transport, List.of(MARK), 0, 1)) {
            int count = 300;
            for (int i = 0; i < count; i++) {
                session.data().record(i, keyGroup(i), input(i));
            }
            List<Answer> answers = session.data().answersThrough(count - 1, ANSWER_MILLIS);
            require(answers.size() == 2 * count, "expected an OUTPUT and an END_OF_OUTPUTS for each of " + count
                    + " records, got " + answers.size() + " answers");
            for (int i = 0; i < count; i++) {
                Answer output = answers.get(2 * i);
                Answer end = answers.get(2 * i + 1);
                require(output.type() == FrameType.OUTPUT && output.sequence() == i, "answer " + (2 * i)
                        + " is " + output + ", not the OUTPUT of #" + i);
                require(end.type() == FrameType.END_OF_OUTPUTS && end.sequence() == i, "answer " + (2 * i + 1)
                        + " is " + end + ", not the END_OF_OUTPUTS of #" + i);
                JsonNode marked = JSON.readTree(output.output().payload());
                require(marked.path("n").asInt(-1) == i && marked.path("conformance").asBoolean(false),
                        "#" + i + "'s output is " + output.output().text());
                require(output.output().headers().equals(input(i).headers())
                                && output.output().timestamp() == input(i).timestamp(),
                        "#" + i + "'s output lost its headers or timestamp: " + output.output());
            }
            worker.closeSession(session.id());
        }
    }

    private void watermarksAndBarriers(KitTransport transport) throws Exception {
        try (Session session = worker.open(transport, List.of(MARK), 0, 1)) {
            DataPath data = session.data();
            data.record(0, KeyGroups.NONE, input(0));
            data.watermark(1, 100);
            data.record(2, KeyGroups.NONE, input(2));
            data.barrier(3, 7);
            data.watermark(4, Long.MAX_VALUE);
            List<String> answers = data.answersThrough(4, ANSWER_MILLIS).stream()
                    .map(answer -> FrameType.name(answer.type()) + " #" + answer.sequence()).toList();
            List<String> expected = List.of("OUTPUT #0", "END_OF_OUTPUTS #0", "END_OF_OUTPUTS #1", "OUTPUT #2",
                    "END_OF_OUTPUTS #2", "END_OF_OUTPUTS #3", "END_OF_OUTPUTS #4");
            require(answers.equals(expected), "answered " + answers + ", expected " + expected);
            worker.closeSession(session.id());
        }
    }

    /**
     * A batch open for 10 ms of processing time: however long the worker waits, it closes only once the bridge's
     * clock (CLOCK inputs) has moved 10 ms, so a replay of the same inputs closes the same batches.
     */
    private void clock(KitTransport transport) throws Exception {
        try (Session session = worker.open(transport, List.of(AGED_BATCH), 0, 1)) {
            DataPath data = session.data();
            data.clock(0, 1_000);
            data.record(1, KeyGroups.NONE, input(1));
            data.answersThrough(1, ANSWER_MILLIS);
            Thread.sleep(50);
            data.watermark(2, 5);
            data.clock(3, 1_010);
            data.watermark(4, 6);
            List<Answer> answers = data.answersThrough(4, ANSWER_MILLIS);
            List<String> kinds = answers.stream()
                    .map(answer -> FrameType.name(answer.type()) + " #" + answer.sequence()).toList();
            List<String> expected = List.of("END_OF_OUTPUTS #2", "END_OF_OUTPUTS #3", "OUTPUT #4", "END_OF_OUTPUTS #4");
            require(kinds.equals(expected), "answered " + kinds + ", expected " + expected + " (a batch of"
                    + " max_wait_ms 10 opened at processing time 1000 closes at the watermark after CLOCK 1010, and"
                    + " not before, whatever the worker's own clock says)");
            String batchSize = answers.get(2).output().headers().get("batch_size");
            require("1".equals(batchSize), "the batch holds " + batchSize + " records, not 1");
            worker.closeSession(session.id());
        }
    }

    /**
     * {@code mark} (fail) then {@code count} (dead letter): a JSON record without a key passes mark, whose output
     * count fails on, so none of the record's outputs may come; a record with a key is counted as before.
     */
    private void deadLetter(KitTransport transport) throws Exception {
        try (Session session = worker.open(transport, List.of(MARK, COUNT_OR_DEAD_LETTER), 0, 1)) {
            DataPath data = session.data();
            data.record(0, KeyGroups.NONE, KitRecord.json("{\"id\":0}", 0, Map.of()));
            data.record(1, KeyGroups.NONE, KitRecord.json("{\"key\":\"a\"}", 0, Map.of()));
            List<Answer> answers = data.answersThrough(1, ANSWER_MILLIS);
            List<String> kinds = answers.stream()
                    .map(answer -> FrameType.name(answer.type()) + " #" + answer.sequence()).toList();
            List<String> expected = List.of("INPUT_FAILED #0", "OUTPUT #1", "END_OF_OUTPUTS #1");
            require(kinds.equals(expected), "answered " + kinds + ", expected " + expected + ": " + answers);
            InputFailures.Failure failure = answers.getFirst().failure();
            require(failure.step().equals("count") && !failure.errorClass().isBlank() && !failure.message().isBlank(),
                    "the failure does not name the step 'count', an error class and a message: " + failure);
            worker.closeSession(session.id());
        }
    }

    private void failStepStillFails(KitTransport transport) throws Exception {
        try (Session session = worker.open(transport, List.of(MARK, COUNT_OR_DEAD_LETTER), 0, 1)) {
            session.data().record(0, KeyGroups.NONE, KitRecord.json("not json", 0, Map.of()));
            Answer answer = session.data().answersThrough(0, ANSWER_MILLIS).getLast();
            require(answer.type() == FrameType.ERROR, "answered " + answer + ", not ERROR (mark says on_error fail)");
            worker.closeSession(session.id());
        }
    }

    /** Counts key a three times and key b twice, each in its key group, then takes the state at a barrier. */
    private List<KeyGroupState> snapshot(KitTransport transport) throws Exception {
        try (Session session = worker.open(transport, List.of(COUNT), 0, 1)) {
            long sequence = 0;
            for (int i = 0; i < 5; i++) {
                boolean a = i % 2 == 0;
                session.data().record(sequence++, a ? GROUP_A : GROUP_B, keyed(a ? "a" : "b"));
            }
            session.data().barrier(sequence, 1);
            session.data().answersThrough(sequence, ANSWER_MILLIS);
            List<KeyGroupState> pieces = worker.snapshot(session.id(), 1);
            TreeSet<Integer> groups = new TreeSet<>();
            for (int i = 0; i < pieces.size(); i++) {
                KeyGroupState piece = pieces.get(i);
                require(piece.hasKeyGroup(), "a piece of a keyed session's state has no key group");
                groups.add(piece.getKeyGroup());
                boolean last = i + 1 == pieces.size() || pieces.get(i + 1).getKeyGroup() != piece.getKeyGroup();
                require(piece.getContinued() != last, "key group " + piece.getKeyGroup() + "'s pieces are not"
                        + " marked continued on all but the last");
            }
            require(groups.equals(new TreeSet<>(List.of(GROUP_A, GROUP_B))), "the state holds key groups " + groups
                    + ", not those of the records, " + List.of(GROUP_A, GROUP_B));
            worker.closeSession(session.id());
            return pieces;
        }
    }

    /**
     * A new session restored with {@code pieces}: key a continues at 4; key b at 3 when its state is there, else
     * starts again at 1.
     */
    private void continues(KitTransport transport, List<KeyGroupState> pieces, boolean withB) throws Exception {
        require(!pieces.isEmpty(), "no state was taken to restore");
        try (Session session = worker.open(transport, List.of(COUNT), withB ? 0 : 1, withB ? 1 : 2)) {
            worker.restore(session.id(), pieces);
            session.data().record(0, GROUP_A, keyed("a"));
            session.data().record(1, GROUP_B, keyed("b"));
            List<Answer> answers = session.data().answersThrough(1, ANSWER_MILLIS);
            List<String> counts = answers.stream().filter(answer -> answer.type() == FrameType.OUTPUT)
                    .map(answer -> answer.output().text()).toList();
            List<String> expected = List.of("{\"key\":\"a\",\"count\":4}",
                    "{\"key\":\"b\",\"count\":" + (withB ? 3 : 1) + "}");
            require(counts.size() == 2 && JSON.readTree(counts.get(0)).equals(JSON.readTree(expected.get(0)))
                            && JSON.readTree(counts.get(1)).equals(JSON.readTree(expected.get(1))),
                    "counted " + counts + ", expected " + expected);
            worker.closeSession(session.id());
        }
    }

    private void refusesAndServesOn(KitTransport transport, Misbehaviour how) throws Exception {
        try (Session session = worker.open(transport, List.of(MARK), 0, 1)) {
            session.data().record(0, KeyGroups.NONE, input(0));
            session.data().answersThrough(0, ANSWER_MILLIS);
            try {
                session.data().misbehave(how, 1);
                List<Answer> answers = session.data().answersThrough(1, ANSWER_MILLIS);
                Answer last = answers.getLast();
                require(last.type() == FrameType.ERROR, "the worker accepted it: answered " + answers);
            } catch (SessionEnded ended) {
                // The other way to refuse it.
            }
            closeQuietly(session.id());
        }
        require(worker.exited() == null, worker.exited() + "; its last output:\n" + worker.lastOutput());
        worker.health();
        try (Session next = worker.open(transport, List.of(MARK), 0, 1)) {
            next.data().record(0, KeyGroups.NONE, input(0));
            require(next.data().answersThrough(0, ANSWER_MILLIS).getFirst().type() == FrameType.OUTPUT,
                    "a new session after it does not answer a record");
            worker.closeSession(next.id());
        }
    }

    /** A step whose config holds 100 KiB where a number belongs: every worker's refusal quotes what it found. */
    private void oversizedRefusal() throws Report.Broken {
        StepSpec step = StepSpec.newBuilder().setName("oversized-config").setType("batch")
                .setConfigJson(JSON.createObjectNode().put("max_count", OVERSIZED).toString()).build();
        StatusRuntimeException refused = refusal(WorkerUnderTest.request(List.of(step), 0, 1)
                .setTransport(TransportKind.TRANSPORT_KIND_GRPC).setToken("t3"));
        requireCode(refused, Status.Code.INVALID_ARGUMENT);
        requireCut(String.valueOf(refused.getStatus().getDescription()), "step 'oversized-config'");
    }

    /**
     * An {@code append_field} step whose name passes 100 KiB fails a record that is no JSON: every worker's error
     * names the step.
     */
    private void oversizedError(KitTransport transport) throws Exception {
        String name = "fails-with-a-long-name " + OVERSIZED;
        StepSpec step = StepSpec.newBuilder().setName(name).setType("append_field").setConfigJson("{}").build();
        try (Session session = worker.open(transport, List.of(step), 0, 1)) {
            session.data().record(0, KeyGroups.NONE, KitRecord.json("not json", 0, Map.of()));
            Answer answer = session.data().answersThrough(0, ANSWER_MILLIS).getLast();
            require(answer.type() == FrameType.ERROR, "answered " + FrameType.name(answer.type()) + ", not ERROR");
            requireCut(answer.error(), "step '" + name.substring(0, 32));
            worker.closeSession(session.id());
        }
    }

    /**
     * {@code text} names the step by {@code naming} and is cut as docs/protocol.md ("Error texts") says: within
     * {@link ErrorTexts#MAX_BYTES} as grpc-message carries it, around the marker, on character boundaries.
     */
    private static void requireCut(String text, String naming) throws Report.Broken {
        String seen = ErrorTexts.encodedLength(text) + " bytes, starting '"
                + text.substring(0, Math.min(text.length(), 300)) + "'";
        require(text.contains(naming), "the text does not name the step: " + seen);
        require(ErrorTexts.encodedLength(text) <= ErrorTexts.MAX_BYTES, "the text is longer than "
                + ErrorTexts.MAX_BYTES + " bytes: " + seen);
        require(CUT.matcher(text).find(), "the text does not say where it was cut: " + seen);
        require(text.indexOf('\uFFFD') < 0, "the text was cut inside a character: " + seen);
    }

    /** A bridge process that opens a session and is killed: the worker must end the session by itself. */
    private void bridgeVanishes(KitTransport transport) throws Exception {
        int before = worker.health().getOpenSessions();
        Process bridge = VanishingBridge.start(worker, transport);
        String ring = null;
        try {
            BufferedReader lines = new BufferedReader(new InputStreamReader(bridge.getInputStream(),
                    StandardCharsets.UTF_8));
            String opened = lines.readLine();
            require(opened != null && opened.startsWith(VanishingBridge.OPENED), "the bridge process did not open"
                    + " its session: " + opened + (bridge.isAlive() ? "" : " (exit code " + bridge.waitFor() + ")"));
            ring = opened.substring(VanishingBridge.OPENED.length()).trim();
            require(worker.health().getOpenSessions() == before + 1, "the worker does not count the bridge's session");
        } finally {
            bridge.destroyForcibly().waitFor();
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ShmPath.LIVENESS_MILLIS + 15_000);
        int open;
        while ((open = worker.health().getOpenSessions()) > before && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        if (!ring.equals("-")) {
            // The bridge made the ring file; once it is dead, removing it falls to whoever notices.
            Files.deleteIfExists(Path.of(ring));
        }
        require(open == before, "the worker still holds the session " + (ShmPath.LIVENESS_MILLIS + 15_000)
                + " ms after its bridge was killed (" + open + " open sessions, " + before + " before)");
    }

    private void closeQuietly(String sessionId) {
        try {
            worker.closeSession(sessionId);
        } catch (StatusRuntimeException e) {
            // A session the worker ended itself may be gone already; the protocol acknowledges either way.
        }
    }

    private static List<KeyGroupState> only(List<KeyGroupState> pieces, int keyGroup) {
        return pieces.stream().filter(piece -> piece.getKeyGroup() == keyGroup).toList();
    }

    /** Record i: a JSON payload, headers of every shape (none, plain, non-ASCII, empty value), its timestamp. */
    static KitRecord input(int i) {
        Map<String, String> headers = switch (i % 4) {
            case 0 -> Map.of();
            case 1 -> Map.of("k", "v" + i);
            case 2 -> Map.of("ü", "€" + i, "emoji", "😀");
            default -> Map.of("empty", "");
        };
        return KitRecord.json("{\"n\":" + i + "}", i * 10L, headers);
    }

    /** Every third record's stream is not keyed; the others carry key groups up to the largest Flink has. */
    static int keyGroup(int i) {
        return i % 3 == 0 ? KeyGroups.NONE : (i * 7919) % 32768;
    }

    private static KitRecord keyed(String key) {
        return KitRecord.json("{\"key\":\"" + key + "\"}", 0, Map.of());
    }

    private static void requireCode(StatusRuntimeException e, Status.Code code) throws Report.Broken {
        require(e.getStatus().getCode() == code, "expected " + code + ", got " + GrpcChannels.describe(e.getStatus()));
    }

    static void deleteTree(Path root) throws IOException {
        try (var paths = Files.walk(root)) {
            for (Path path : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(path);
            }
        }
    }
}
