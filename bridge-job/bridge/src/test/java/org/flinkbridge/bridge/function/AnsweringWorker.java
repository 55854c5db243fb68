package org.flinkbridge.bridge.function;

import org.flinkbridge.bridge.session.WorkerChannel;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * A worker in memory for the exchange's tests: what it was sent, as lines in {@link #inputs}, and the answers it
 * queued, all handed over at the next poll; every other call does nothing.
 */
abstract class AnsweringWorker implements WorkerChannel {

    /** One answer to give, when polled. */
    @FunctionalInterface
    interface Answer {
        void give(Answers answers) throws IOException;
    }

    final List<String> inputs = new ArrayList<>();
    private final List<Answer> answers = new ArrayList<>();

    void answer(Answer answer) {
        answers.add(answer);
    }

    /** Whether answers wait for the next poll. */
    boolean answersQueued() {
        return !answers.isEmpty();
    }

    @Override
    public boolean poll(Answers to, long timeoutNanos) throws IOException {
        boolean any = !answers.isEmpty();
        List<Answer> now = new ArrayList<>(answers);
        answers.clear();
        for (Answer answer : now) {
            answer.give(to);
        }
        return any;
    }

    @Override
    public void flush() {}

    @Override
    public boolean workerStopped() {
        return false;
    }

    @Override
    public void onAnswersWaiting(Runnable wakeUp) {}

    @Override
    public void close() {}
}
