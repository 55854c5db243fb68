package org.flinkbridge.worker.sdk;

/** Receives the outputs of a step, in the order they are emitted. */
@FunctionalInterface
public interface Emitter {
    void emit(Record output);
}
