package org.flinkbridge.pipeline;

/** What a record a step fails on (raises on, or whose output cannot be encoded) leads to. */
public enum OnError {
    /** The task fails, and Flink restores the job from its checkpoint: the same record comes again. */
    FAIL,
    /** The record goes to the pipeline's dead_letters sink, naming the step and the error; the others go on. */
    DEAD_LETTER;

    /** The name in pipeline files, e.g. {@code dead_letter}. */
    public String configName() {
        return ConfigNames.of(this);
    }
}
