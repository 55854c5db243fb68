package org.flinkbridge.pipeline;

/** Prints each record to the task's standard output. */
public record PrintSinkSpec(String name) implements SinkSpec {

    public static final String TYPE = "print";

    public PrintSinkSpec {
        Checks.nonBlank(name, "sink name");
    }
}
