package org.flinkbridge.conformance;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The answers a session has received and the kit has not yet looked at, in the order they came, each checked to
 * answer the oldest input not yet ended: a worker answers strictly in input order and drops none.
 */
final class AnswerLog {

    private final List<Answer> received = new ArrayList<>();
    /** The oldest input (sessions number them from 0) whose END_OF_OUTPUTS or ERROR has not come. */
    private long open;

    void add(Answer answer) throws IOException {
        if (answer.sequence() != open) {
            throw new ProtocolViolation("the worker answered " + answer + " while input #" + open + " was not yet ended:"
                    + " answers must come in input order, one end for every input");
        }
        received.add(answer);
        if (answer.ends()) {
            open++;
        }
    }

    /** The answers up to the one that ends input {@code sequence}, taken from the log; null while it has not come. */
    List<Answer> takeThrough(long sequence) {
        for (int i = 0; i < received.size(); i++) {
            Answer answer = received.get(i);
            if (answer.sequence() == sequence && answer.ends()) {
                List<Answer> through = new ArrayList<>(received.subList(0, i + 1));
                received.subList(0, i + 1).clear();
                return through;
            }
        }
        return null;
    }

    /** Whether answers came for the oldest input not yet ended (all others are taken or ended). */
    boolean partlyAnswered() {
        return !received.isEmpty();
    }

    /** An answer the protocol does not allow, as opposed to a session that ended. */
    static final class ProtocolViolation extends IOException {
        ProtocolViolation(String what) {
            super(what);
        }
    }

    IOException timedOut(long sequence, long timeoutMillis) {
        return new IOException("no end of input #" + sequence + " within " + timeoutMillis + " ms; answers so far: "
                + received);
    }
}
