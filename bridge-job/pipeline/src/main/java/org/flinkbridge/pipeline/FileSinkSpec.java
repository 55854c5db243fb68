package org.flinkbridge.pipeline;

/**
 * Writes each record's payload as one line into files under a directory.
 *
 * @param path absolute path, or a URI with a scheme such as {@code hdfs://}
 */
public record FileSinkSpec(String name, String path) implements SinkSpec {

    public static final String TYPE = "file";

    public FileSinkSpec {
        Checks.nonBlank(name, "sink name");
        Checks.nonBlank(path, "file sink path");
    }
}
