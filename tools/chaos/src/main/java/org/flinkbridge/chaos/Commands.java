package org.flinkbridge.chaos;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** How the chaos run and the load test run a command (the launcher, docker): its output, or a failure naming it. */
final class Commands {

    private Commands() {}

    /**
     * Runs {@code command} in {@code directory} with {@code environment} added to this process's; returns its
     * output (standard output and error together), or fails with it unless it exits 0 within {@code timeout}.
     */
    static String run(Path directory, Map<String, String> environment, Duration timeout, List<String> command)
            throws Exception {
        ProcessBuilder builder = new ProcessBuilder(command).directory(directory.toFile()).redirectErrorStream(true);
        builder.environment().putAll(environment);
        Process process = builder.start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS) || process.exitValue() != 0) {
            process.destroyForcibly();
            throw new IOException(String.join(" ", command) + " failed:\n" + output);
        }
        return output;
    }
}
