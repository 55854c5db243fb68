package org.flinkbridge.worker;

import org.flinkbridge.proto.control.OnError;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.proto.data.CellContent;
import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.proto.data.TimeDomain;
import org.flinkbridge.proto.data.TimerChange;
import org.flinkbridge.proto.data.TimerChanges;
import org.flinkbridge.proto.data.TimerFiring;
import org.flinkbridge.proto.data.TimerOp;
import org.flinkbridge.protocol.FrameType;
import org.flinkbridge.worker.SessionBridge.Answer;
import org.flinkbridge.worker.SessionBridge.Transport;
import org.flinkbridge.worker.steps.CellsStep;
import org.flinkbridge.worker.steps.TimerStep;
import org.flinkbridge.worker.steps.UppercaseStep;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import static org.flinkbridge.worker.SessionBridge.bs;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Keyed sessions whose steps set timers (docs/protocol.md, "Timers"), over a ring and over the gRPC stream, played as
 * a bridge plays them: a record's or firing's timer changes in one TIMERS frame before its end marker, TIMER inputs
 * running the step's onTimer with the key's cells, its outputs through the later steps.
 */
class TimerSessionsTest extends WorkerServerFixture {

    private final List<SessionBridge> bridges = new ArrayList<>();

    @AfterEach
    void stop() throws Exception {
        for (SessionBridge bridge : bridges) {
            bridge.close();
        }
    }

    private SessionBridge open(Transport transport, StepSpec... steps) throws IOException {
        SessionBridge bridge = SessionBridge.open(transport, rings, channel, control, steps);
        bridges.add(bridge);
        return bridge;
    }

    /** TimerStep: with its value cell 'note', or with none ({@code cells} false). */
    private static StepSpec timers(boolean cells) {
        return StepSpec.newBuilder().setName("timers").setType(TimerStep.class.getName())
                .setConfigJson(cells ? "" : "{\"cells\": false}").build();
    }

    private static StepSpec upper() {
        return StepSpec.newBuilder().setName("upper").setType(UppercaseStep.class.getName()).build();
    }

    private static Answer output(long sequence, String text) {
        return new Answer(FrameType.OUTPUT, sequence, text, null);
    }

    private static Answer end(long sequence) {
        return new Answer(FrameType.END_OF_OUTPUTS, sequence, null, null);
    }

    private static Answer timersFrame(long sequence, TimerChange... changes) {
        return new Answer(FrameType.TIMERS, sequence, null, null, TimerChanges.newBuilder()
                .addAllChanges(List.of(changes)).build());
    }

    private static TimerChange change(TimerOp op, int step, TimeDomain domain, long timestamp) {
        return TimerChange.newBuilder().setOp(op).setStep(step).setDomain(domain).setTimestamp(timestamp).build();
    }

    private static TimerFiring firing(int step, TimeDomain domain, long timestamp) {
        return TimerFiring.newBuilder().setStep(step).setDomain(domain).setTimestamp(timestamp).build();
    }

    private static KeyCells note(String key, String note) {
        KeyCells.Builder cells = KeyCells.newBuilder().setKey(bs(key));
        if (note != null) {
            cells.addCells(CellContent.newBuilder().setCell(0).setValue(bs(note)));
        }
        return cells.build();
    }

    private static void error(Answer answer, long sequence, String contains) {
        assertEquals(FrameType.ERROR, answer.type(), answer.toString());
        assertEquals(sequence, answer.sequence());
        assertTrue(answer.text().contains(contains), answer.text());
    }

    @Test
    void theResponseSaysWhetherTheStepsSetTimers() throws IOException {
        assertTrue(open(Transport.GRPC, timers(false)).opened().getTimers());
        assertFalse(open(Transport.GRPC, StepSpec.newBuilder().setName("cells").setType(CellsStep.class.getName())
                .build()).opened().getTimers());
    }

    @Test
    void aSessionThatIsNotKeyedWhoseStepsSetTimersIsRefusedNamingTheStep() {
        SessionBridge.assertRefusedUnkeyed(control, ": step 'timers' sets timers, but the session is not keyed: a "
                + "timer belongs to a key: key the segment with bridge.key", upper(), timers(false));
        assertEquals(0, server.openSessions());
    }

    /**
     * A record's changes come in the order the step made them, with the step's place in the session, in one TIMERS
     * frame after its outputs and before its end marker; a record that changes none gets no TIMERS frame.
     */
    @ParameterizedTest
    @EnumSource(Transport.class)
    void aRecordsTimerChangesAreOneTimersFrameBeforeItsEndMarker(Transport transport) throws Exception {
        SessionBridge bridge = open(transport, upper(), timers(false));
        bridge.record(0, 3, "a", "event 10,proc 20,-event 10,event 0,event -5");
        bridge.record(1, 3, "b", "");

        assertEquals(List.of(output(0, "ok"),
                timersFrame(0, change(TimerOp.TIMER_OP_SET, 1, TimeDomain.TIME_DOMAIN_EVENT_TIME, 10),
                        change(TimerOp.TIMER_OP_SET, 1, TimeDomain.TIME_DOMAIN_PROCESSING_TIME, 20),
                        change(TimerOp.TIMER_OP_DELETE, 1, TimeDomain.TIME_DOMAIN_EVENT_TIME, 10),
                        change(TimerOp.TIMER_OP_SET, 1, TimeDomain.TIME_DOMAIN_EVENT_TIME, 0),
                        change(TimerOp.TIMER_OP_SET, 1, TimeDomain.TIME_DOMAIN_EVENT_TIME, -5)),
                end(0),
                output(1, "ok"), end(1)), bridge.receive(5));
    }

    /**
     * A TIMER runs its step's onTimer with the key's cells (loaded as part of it) and the previous watermark, hands
     * what it emits through the later steps, and answers the timers it set before its end marker.
     */
    @ParameterizedTest
    @EnumSource(Transport.class)
    void aFiringRunsOnTimerWithTheKeysCellsAndItsOutputsGoThroughTheLaterSteps(Transport transport)
            throws Exception {
        SessionBridge bridge = open(transport, timers(true), upper());
        bridge.watermark(0, 5);
        bridge.load(1, note("a", "again"));
        bridge.record(1, 3, "a", "event 7");
        bridge.timer(2, 3, "a", firing(0, TimeDomain.TIME_DOMAIN_EVENT_TIME, 7));
        bridge.load(3, note("b", "x"));
        bridge.timer(3, 4, "b", firing(0, TimeDomain.TIME_DOMAIN_PROCESSING_TIME, 1_000));

        assertEquals(List.of(end(0),
                output(1, "OK"), timersFrame(1, change(TimerOp.TIMER_OP_SET, 0, TimeDomain.TIME_DOMAIN_EVENT_TIME, 7)),
                end(1),
                output(2, "FIRED EVENT_TIME 7 NOTE=AGAIN WATERMARK=5"),
                timersFrame(2, change(TimerOp.TIMER_OP_SET, 0, TimeDomain.TIME_DOMAIN_EVENT_TIME, 17)),
                end(2),
                output(3, "FIRED PROCESSING_TIME 1000 NOTE=X WATERMARK=5"), end(3)), bridge.receive(9));
    }

    /** In a session with cells, a TIMER of a key that is not resident (no LOAD before it) is an error naming it. */
    @ParameterizedTest
    @EnumSource(Transport.class)
    void aTimerOfAKeyThatIsNotResidentIsAnErrorNamingTheKey(Transport transport) throws Exception {
        SessionBridge bridge = open(transport, timers(true));
        bridge.timer(0, 3, "never-loaded", firing(0, TimeDomain.TIME_DOMAIN_EVENT_TIME, 7));

        error(bridge.receive(1).getFirst(), 0, "java.lang.IllegalStateException: input #0: the key 'never-loaded' "
                + "is not resident in this session: the bridge sent no LOAD of its cells before this TIMER");
    }

    /**
     * An input that failed changes no timer: one whose step throws is an ERROR alone; one a dead-letter step failed is
     * INPUT_FAILED alone, and the next input's TIMERS frame holds only its own changes.
     */
    @ParameterizedTest
    @EnumSource(Transport.class)
    void aFailedInputAnswersNoTimers(Transport transport) throws Exception {
        SessionBridge failing = open(transport, timers(false));
        failing.record(0, 3, "a", "event 5,fail");
        error(failing.receive(1).getFirst(), 0, "failed as asked");

        SessionBridge deadLetters = open(transport, timers(false).toBuilder()
                .setOnError(OnError.ON_ERROR_DEAD_LETTER).build());
        deadLetters.record(0, 3, "a", "event 5,fail");
        deadLetters.record(1, 3, "a", "event 6");
        List<Answer> answers = deadLetters.receive(4);
        assertEquals(new Answer(FrameType.INPUT_FAILED, 0, null, null), answers.get(0));
        assertEquals(List.of(output(1, "ok"),
                timersFrame(1, change(TimerOp.TIMER_OP_SET, 0, TimeDomain.TIME_DOMAIN_EVENT_TIME, 6)), end(1)),
                answers.subList(1, 4));
    }

    /** A step that raises in onTimer fails the session with an ERROR even when its on_error sends records aside. */
    @ParameterizedTest
    @EnumSource(Transport.class)
    void aRaiseInOnTimerIsAnErrorWhateverOnError(Transport transport) throws Exception {
        SessionBridge bridge = open(transport, timers(true).toBuilder().setOnError(OnError.ON_ERROR_DEAD_LETTER)
                .build());
        bridge.load(0, note("a", "boom"));
        bridge.timer(0, 3, "a", firing(0, TimeDomain.TIME_DOMAIN_EVENT_TIME, 7));

        error(bridge.receive(1).getFirst(), 0, "java.lang.IllegalStateException: boom at 7");
    }

    /** TIMERs the session's steps cannot have asked for are errors naming why; each fails its session. */
    @ParameterizedTest
    @EnumSource(Transport.class)
    void protocolViolationsAreErrorsNamingTheCause(Transport transport) throws Exception {
        List<TimerFiring> firings = List.of(firing(7, TimeDomain.TIME_DOMAIN_EVENT_TIME, 1),
                firing(1, TimeDomain.TIME_DOMAIN_EVENT_TIME, 1),
                firing(0, TimeDomain.TIME_DOMAIN_UNSPECIFIED, 1),
                TimerFiring.newBuilder().setStep(0).setDomainValue(9).setTimestamp(1).build());
        List<String> causes = List.of("input #0: a TIMER, but it names step 7, but the session has 2 steps",
                "input #0: a TIMER, but it names step 1 ('upper'), which sets no timers",
                "input #0: a TIMER, but its time domain is TIME_DOMAIN_UNSPECIFIED",
                "input #0: a TIMER, but its time domain is unknown (9)");
        for (int i = 0; i < firings.size(); i++) {
            SessionBridge bridge = open(transport, timers(false), upper());
            bridge.timer(0, 3, "a", firings.get(i));
            error(bridge.receive(1).getFirst(), 0, causes.get(i));
        }

        SessionBridge noTimers = open(transport, upper());
        noTimers.timer(0, 3, "a", firing(0, TimeDomain.TIME_DOMAIN_EVENT_TIME, 1));
        error(noTimers.receive(1).getFirst(), 0, "input #0: a TIMER, but the session's steps set no timers");
    }
}
