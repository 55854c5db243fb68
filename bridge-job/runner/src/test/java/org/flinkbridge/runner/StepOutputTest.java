package org.flinkbridge.runner;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a step prints goes into its worker's log (standard error), line by line, named by its session
 * (docs/protocol.md, "Launch and lifetime"): a Python segment that prints a line per record, far more than a pipe
 * holds, runs to the end in the Rust worker (which hosts it in a session process of its own) and in the Python
 * worker (a process per session too), and a Java step doing the same in the Java worker, every record answered and
 * every line in the log. The workers run as sidecars whose standard output nobody reads after the listening line,
 * as a launcher may well do.
 */
class StepOutputTest {

    private static final int RECORDS = 200_000;
    /** A printed line in the log: the session's id (the worker's id, a dash, 128 random bits) names it. */
    private static final Pattern PRINTED = Pattern.compile("session w[0-9a-f]+-[0-9a-f]{32}\\b.*: printed record (\\d+)$");

    @ParameterizedTest
    @ValueSource(strings = {"rust", "python", "java"})
    void aStepPrintingALinePerRecordRunsToTheEndAndEveryLineIsLoggedNamedByItsSession(String worker,
            @TempDir Path dir) throws Exception {
        Path segments = Files.createDirectory(dir.resolve("segments"));
        Files.writeString(segments.resolve("printing.py"), """
                import json


                class PrintEach:
                    def process(self, message):
                        print("printed record", json.loads(message.payload)["id"])
                        return [message]
                """);
        Path pipeline = TestPipelines.write(dir, "printing", """
                name: printing
                sources: {events: {type: generator, count: %d, keys: 20, seed: 3}}
                steps:
                  - {step_name: print_each, type: %s}
                sinks: {files: {type: file, path: unused}}
                bridge: {parallelism: 1}
                """.formatted(RECORDS, worker.equals("java") ? PrintEachStep.class.getName() : "printing.PrintEach"));
        Path log = dir.resolve("worker.log");
        ProcessBuilder.Redirect logged = ProcessBuilder.Redirect.to(log.toFile());
        Process sidecar = switch (worker) {
            case "rust" -> TestPeers.startRustWorker(segments, logged);
            case "python" -> TestPeers.startPythonWorker(segments, logged);
            default -> TestPeers.startWorker(PrintEachStep.class, logged);
        };
        try {
            CompletableFuture<String> run = TestPipelines.runInBackground(pipeline.toString(), "--worker-address",
                    TestPeers.workerAddress(sidecar), "--output", dir.resolve("out").toString());
            String summary = run.get(5, TimeUnit.MINUTES);
            assertTrue(summary.contains("read=%d sent=%d received=%d written=%d".formatted(RECORDS, RECORDS, RECORDS,
                    RECORDS)), summary);
        } finally {
            sidecar.descendants().forEach(ProcessHandle::destroyForcibly);
            sidecar.destroyForcibly().waitFor();
        }

        List<String> printed = Files.readAllLines(log).stream().filter(line -> line.contains(": printed record "))
                .toList();
        List<String> unnamed = printed.stream().filter(line -> !PRINTED.matcher(line).find()).limit(3).toList();
        assertEquals(List.of(), unnamed, "printed lines in the log not named by their session");
        TreeSet<Long> ids = printed.stream().map(PRINTED::matcher).filter(Matcher::find)
                .map(found -> Long.parseLong(found.group(1))).collect(Collectors.toCollection(TreeSet::new));
        assertEquals(RECORDS, printed.size(), "lines printed");
        assertEquals(List.of(RECORDS, 0L, RECORDS - 1L), List.of(ids.size(), ids.first(), ids.last()),
                "records printed: how many, the first and the last");
    }
}
