package org.flinkbridge.pipeline;

/**
 * A file, or a directory of files, of newline-delimited records; each line is one record's payload.
 *
 * @param path              absolute path, or a URI with a scheme such as {@code hdfs://}
 * @param monitorIntervalMs above 0, keep watching the directory for new files at this interval (unbounded)
 */
public record FileSourceSpec(String name, String path, long monitorIntervalMs) implements SourceSpec {

    public static final String TYPE = "file";
    public static final long DEFAULT_MONITOR_INTERVAL_MS = 0;

    public FileSourceSpec {
        Checks.nonBlank(name, "source name");
        Checks.nonBlank(path, "file source path");
        Checks.atLeast(monitorIntervalMs, 0, "file source monitor interval");
    }

    @Override
    public boolean bounded() {
        return monitorIntervalMs == 0;
    }
}
