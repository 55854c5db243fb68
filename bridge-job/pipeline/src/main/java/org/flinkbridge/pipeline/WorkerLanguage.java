package org.flinkbridge.pipeline;

/**
 * Which worker runtime a TaskManager spawns when the pipeline names no running worker: {@code java} (the
 * {@code workers/java} module's jar), {@code python} (the {@code workers/python/} runtime, one process per session) or
 * {@code rust} (the {@code workers/rust} binary, one thread per session).
 */
public enum WorkerLanguage {
    JAVA, PYTHON, RUST;

    /** The name in pipeline files and on the command line, e.g. {@code python}. */
    public String configName() {
        return ConfigNames.of(this);
    }

    /** @throws IllegalArgumentException naming the allowed names */
    public static WorkerLanguage parse(String name) {
        return ConfigNames.parse(WorkerLanguage.class, name);
    }
}
