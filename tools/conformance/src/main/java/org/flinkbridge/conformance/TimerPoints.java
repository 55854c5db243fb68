package org.flinkbridge.conformance;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.flinkbridge.conformance.WorkerUnderTest.KitTransport;
import org.flinkbridge.conformance.WorkerUnderTest.Session;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.proto.data.TimeDomain;
import org.flinkbridge.proto.data.TimerChange;
import org.flinkbridge.proto.data.TimerChanges;
import org.flinkbridge.proto.data.TimerFiring;
import org.flinkbridge.proto.data.TimerOp;
import org.flinkbridge.protocol.FrameType;

import java.io.IOException;
import java.util.List;
import java.util.Map;

import static org.flinkbridge.conformance.CellPoints.bs;
import static org.flinkbridge.conformance.CellPoints.bytes;
import static org.flinkbridge.conformance.Report.require;

/**
 * The timer points (docs/protocol.md, "Timers"), on each transport, with the built-in {@code window} step
 * (docs/steps.md), which sets an event-time timer at each window's end: the declaration in the OpenSession
 * response, a record's TIMERS answer, the firing and its output, a late record after it, a TIMER that breaks the
 * rules, and the refusal of a session that is not keyed.
 */
record TimerPoints(WorkerUnderTest worker, Report report) {

    private static final long ANSWER_MILLIS = 20_000;
    static final StepSpec WINDOW = StepSpec.newBuilder().setName("win").setType("window")
            .setConfigJson("{\"key_json_field\":\"user\",\"size_ms\":1000}").build();
    private static final String KEY = "a";
    private static final int KEY_GROUP = 11;
    /** A record at 1,500 ms falls in the window [1000, 2000), whose timer is at 1,999. */
    private static final long AT = 1_500;
    private static final long FIRES_AT = 1_999;

    void run(KitTransport transport) {
        String over = " (" + transport.flag + ")";
        report.check("timers: declared: a keyed session of window says its steps set timers in the OpenSession"
                + " response" + over, () -> withSession(transport, session -> require(session.opened().getTimers(),
                "the response's timers is false")));
        report.check("timers: set, fire, late: a record of 'a' at 1500 is answered with one TIMERS (SET step 0"
                + " EVENT_TIME 1999) before END_OF_OUTPUTS; a TIMER of 'a' at 1999 with the window's OUTPUT; a record"
                + " of 'a' at 1200 then with itself, header late=win, and no TIMERS" + over,
                () -> withSession(transport, this::setFireLate));
        report.check("timers: a TIMER naming a step the session does not have is answered with ERROR" + over,
                () -> withSession(transport, this::stepOutOfRange));
        report.check("timers: a session that is not keyed whose steps set timers is refused with FAILED_PRECONDITION"
                + over, () -> {
                    try {
                        Session session = worker.open(transport, List.of(WINDOW), 0, 1, false);
                        worker.closeQuietly(session);
                        throw new Report.Broken("the session was opened");
                    } catch (StatusRuntimeException refused) {
                        require(refused.getStatus().getCode() == Status.Code.FAILED_PRECONDITION, "refused with "
                                + refused.getStatus().getCode() + ", not FAILED_PRECONDITION");
                    }
                });
    }

    @FunctionalInterface
    private interface Use {
        void on(Session session) throws Exception;
    }

    private void withSession(KitTransport transport, Use use) throws Exception {
        Session session = worker.open(transport, List.of(WINDOW), 0, 1, true);
        try {
            use.on(session);
        } finally {
            worker.closeQuietly(session);
        }
    }

    private void setFireLate(Session session) throws Exception {
        DataPath data = session.data();
        data.load(0, KeyCells.newBuilder().setKey(bs(KEY)).build());
        data.record(0, KEY_GROUP, bytes(KEY), user(AT, Map.of()));
        List<Answer> answers = data.answersThrough(0, ANSWER_MILLIS);
        TimerChanges expected = TimerChanges.newBuilder().addChanges(TimerChange.newBuilder()
                .setOp(TimerOp.TIMER_OP_SET).setStep(0).setDomain(TimeDomain.TIME_DOMAIN_EVENT_TIME)
                .setTimestamp(FIRES_AT)).build();
        require(answers.size() == 2 && answers.get(0).type() == FrameType.TIMERS
                        && answers.get(1).type() == FrameType.END_OF_OUTPUTS,
                "the record was answered " + answers + ", not with one TIMERS then END_OF_OUTPUTS");
        require(answers.getFirst().timers().equals(expected), "the TIMERS are {" + Answer.oneLine(
                answers.getFirst().timers()) + "}, not {" + Answer.oneLine(expected) + "}");

        data.timer(1, KEY_GROUP, bytes(KEY), TimerFiring.newBuilder().setTimestamp(FIRES_AT).setStep(0)
                .setDomain(TimeDomain.TIME_DOMAIN_EVENT_TIME).build());
        answers = data.answersThrough(1, ANSWER_MILLIS);
        String window = "{\"key\":\"a\",\"window_start\":1000,\"window_end\":2000,\"count\":1}";
        require(answers.size() == 2 && answers.get(0).type() == FrameType.OUTPUT
                        && answers.get(1).type() == FrameType.END_OF_OUTPUTS
                        && answers.getFirst().output().text().equals(window),
                "the TIMER was answered " + answers + ", not with the OUTPUT " + window + " then END_OF_OUTPUTS");

        data.record(2, KEY_GROUP, bytes(KEY), user(1_200, Map.of()));
        answers = data.answersThrough(2, ANSWER_MILLIS);
        require(answers.size() == 2 && answers.get(0).type() == FrameType.OUTPUT
                        && answers.get(1).type() == FrameType.END_OF_OUTPUTS
                        && answers.getFirst().output().equals(user(1_200, Map.of("late", WINDOW.getName()))),
                "the late record was answered " + answers + ", not with itself, header late=" + WINDOW.getName()
                        + ", then END_OF_OUTPUTS");
    }

    private void stepOutOfRange(Session session) throws IOException, Report.Broken {
        DataPath data = session.data();
        data.load(0, KeyCells.newBuilder().setKey(bs(KEY)).build());
        data.timer(0, KEY_GROUP, bytes(KEY), TimerFiring.newBuilder().setTimestamp(FIRES_AT).setStep(5)
                .setDomain(TimeDomain.TIME_DOMAIN_EVENT_TIME).build());
        List<Answer> answers = data.answersThrough(0, ANSWER_MILLIS);
        require(answers.size() == 1 && answers.getFirst().type() == FrameType.ERROR,
                "a TIMER of step 5 in a session of one step was answered " + answers + ", not with ERROR");
    }

    private static KitRecord user(long timestamp, Map<String, String> headers) {
        return KitRecord.json("{\"user\":\"" + KEY + "\"}", timestamp, headers);
    }
}
