package org.flinkbridge.worker.steps;

import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;

/**
 * A user step that fails where its config's {@code fail_in} says ({@code open}, {@code process} or
 * {@code restore}) with an exception whose message is over 100 KiB, much of it not ASCII: what a worker must cut
 * before it reaches the bridge.
 */
public class FailingStep implements Step {

    /** How the message starts: a test finds it in the text the bridge gets. */
    public static final String MESSAGE_START = "told to fail with a long message:";

    private String failIn;

    @Override
    public void open(StepContext context) {
        failIn = context.config().path("fail_in").asText();
        failIf("open");
    }

    @Override
    public void process(Record input, Emitter output) {
        failIf("process");
        output.emit(input);
    }

    @Override
    public void restoreState(byte[] state) {
        failIf("restore");
    }

    private void failIf(String where) {
        if (failIn.equals(where)) {
            throw new IllegalStateException(MESSAGE_START + " ünïcödé €".repeat(8_000) + " (its end)");
        }
    }
}
