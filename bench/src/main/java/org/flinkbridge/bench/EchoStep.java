package org.flinkbridge.bench;

import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;

/**
 * Answers each input with itself: a user step that does no work, so a round trip through it measures
 * the transport. The worker loads it by class name, as it loads an application's segments.
 */
public final class EchoStep implements Step {

    /**
     * The step type naming this class. A constant, not {@code EchoStep.class.getName()}: the benchmark
     * JVM has no worker SDK on its classpath, so it must not load this class.
     */
    public static final String TYPE = "org.flinkbridge.bench.EchoStep";

    @Override
    public void process(Record input, Emitter output) {
        output.emit(input);
    }
}
