package org.flinkbridge.job;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** Writes pipeline files for tests and reads what their file sinks wrote. */
final class TestPipelines {

    private TestPipelines() {}

    static Path write(Path dir, String name, String yaml) {
        try {
            Path file = dir.resolve(name + ".yaml");
            Files.writeString(file, yaml);
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Every line of every finished part file under {@code dir} (in-progress files are not output). */
    static List<String> outputLines(Path dir) throws IOException {
        List<String> lines = new ArrayList<>();
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path file : files.filter(Files::isRegularFile).sorted().toList()) {
                String name = file.getFileName().toString();
                if (name.startsWith(".") || name.contains(".inprogress")) {
                    throw new AssertionError("unfinished output file " + file);
                }
                lines.addAll(Files.readAllLines(file, StandardCharsets.UTF_8));
            }
        }
        return lines;
    }

    /**
     * Every line of the committed part files under {@code dir}. After a failure, what was written since the
     * last checkpoint stays in hidden in-progress files that no reader takes as output (they are replayed from
     * the checkpoint instead), so they are left out.
     */
    static List<String> committedLines(Path dir) throws IOException {
        List<String> lines = new ArrayList<>();
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path file : files.filter(Files::isRegularFile)
                    .filter(file -> !file.getFileName().toString().startsWith(".")).sorted().toList()) {
                lines.addAll(Files.readAllLines(file, StandardCharsets.UTF_8));
            }
        }
        return lines;
    }

    static String workerJar() {
        String jar = System.getProperty(PipelineJob.WORKER_JAR_PROPERTY);
        if (jar == null || !Files.isReadable(Path.of(jar))) {
            throw new AssertionError("the worker jar is not built: " + jar);
        }
        return jar;
    }
}
