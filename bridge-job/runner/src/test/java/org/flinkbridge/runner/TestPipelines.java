package org.flinkbridge.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.bridge.BridgeOptions;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Writes pipeline files for tests and reads what their file sinks wrote. */
final class TestPipelines {

    private static final ObjectMapper JSON = new ObjectMapper();

    private TestPipelines() {}

    /**
     * {@code counts.yaml}: {@code events} generated records of 20 keys at {@code rate} a second, counted per key
     * in the worker ({@code running_count}) at parallelism 2, checkpointing every 300 ms, into the file sink;
     * {@code bridgeSettings} are further lines of the {@code bridge} section.
     */
    static Path perKeyCounts(Path dir, int events, int rate, String... bridgeSettings) {
        return perKey(dir, "{step_name: count_per_key, type: running_count, config: {key_json_field: key}}", events,
                rate, bridgeSettings);
    }

    /** {@code step} over 20 keys, keyed by the JSON field {@code key}, at parallelism 2, checkpointing every 300 ms. */
    static Path perKey(Path dir, String step, int events, int rate, String... bridgeSettings) {
        StringBuilder bridge = new StringBuilder();
        for (String setting : bridgeSettings) {
            bridge.append("  ").append(setting).append('\n');
        }
        return write(dir, "counts", """
                name: counts
                sources:
                  events: {type: generator, count: %d, rate: %d, keys: 20, seed: 7}
                steps:
                  - %s
                sinks:
                  files: {type: file, path: unused}
                bridge:
                  parallelism: 2
                  key: {json_field: key}
                  checkpoint_interval_ms: 300
                """.formatted(events, rate, step) + bridge);
    }

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

    /**
     * The processes this JVM had spawned (and theirs) when the last job run in the background started: they belong
     * to earlier jobs. Kept by pid, not by start time: Linux gives a process's start to within a second only
     * (/proc/stat's boot time is in whole seconds), so a worker spawned just after the job started could look older.
     */
    private static volatile Set<Long> earlierProcesses = Set.of();

    static Set<Long> earlierProcesses() {
        return earlierProcesses;
    }

    /** Runs a pipeline with {@link LocalRunner} on another thread: completes with its summary line. */
    static RunningJob runInBackground(String... args) {
        earlierProcesses = ProcessHandle.current().descendants().map(ProcessHandle::pid).collect(Collectors.toSet());
        return RunningJob.start(args);
    }

    /**
     * The counts a {@code running_count} step wrote, by key, from the committed output under {@code out},
     * checked to be 1..n once each for every key (exactly once across failures); returns how many there are.
     */
    static Map<String, List<Long>> runningCountsOnceEach(Path out) throws IOException {
        Map<String, List<Long>> counts = new TreeMap<>();
        for (String line : committedLines(out)) {
            JsonNode count = JSON.readTree(line);
            counts.computeIfAbsent(count.get("key").asText(), key -> new ArrayList<>()).add(count.get("count").asLong());
        }
        for (Map.Entry<String, List<Long>> key : counts.entrySet()) {
            List<Long> seen = key.getValue();
            String name = key.getKey().length() > 40 ? key.getKey().substring(0, 40) + "..." : key.getKey();
            TreeSet<Long> distinct = new TreeSet<>(seen);
            assertEquals(distinct.size(), seen.size(), name + ": a count was written twice");
            assertEquals(seen.size(), distinct.last(), name + ": counts have gaps: " + distinct);
        }
        return counts;
    }

    /**
     * Runs a pipeline with the local runner (the bundled example unless {@code flags} name one), checks that every
     * input was accounted for, and returns its output lines sorted.
     */
    static List<String> runSorted(Path out, String... flags) throws Exception {
        return runSorted("every input accounted for", out, flags);
    }

    /** The same, for a pipeline whose run summary says {@code expected} (a filter's, say: inputs not in the output). */
    static List<String> runSorted(String expected, Path out, String... flags) throws Exception {
        List<String> args = new ArrayList<>(List.of("--output", out.toString()));
        args.addAll(List.of(flags));
        String summary = LocalRunner.run(args.toArray(String[]::new));
        assertTrue(summary.contains(expected), summary);
        List<String> lines = outputLines(out);
        lines.sort(null);
        return lines;
    }

    static String stackTrace(Throwable error) {
        java.io.StringWriter trace = new java.io.StringWriter();
        error.printStackTrace(new java.io.PrintWriter(trace));
        return trace.toString();
    }

    /** The Rust worker binary the tests spawn (its path marks its process). */
    static final String RUST_WORKER = System.getProperty(BridgeOptions.RUST_WORKER.key());

    static String workerJar() {
        String jar = System.getProperty(BridgeOptions.WORKER_JAR.key());
        if (jar == null || !Files.isReadable(Path.of(jar))) {
            throw new AssertionError("the worker jar is not built: " + jar);
        }
        return jar;
    }

    /**
     * Runs {@code pipeline} with {@link #runInBackground} with no restarts, its checkpoints retained under
     * {@code checkpoints}, so that a failed run leaves its last checkpoint to restore.
     */
    static RunningJob runRetainingCheckpoints(Path pipeline, Path checkpoints) {
        return runInBackground(pipeline.toString(), "-Drestart-strategy.type=none",
                "-Dexecution.checkpointing.dir=" + checkpoints.toUri(),
                "-Dexecution.checkpointing.externalized-checkpoint-retention=RETAIN_ON_CANCELLATION");
    }

    /**
     * A run of {@code pipeline} that fails when its Python worker is killed after {@code records / 3} inputs, then
     * its last checkpoint restored at {@code parallelism} and run to the end.
     */
    static void killPythonWorkerThenRestoreAt(String parallelism, Path pipeline, Path checkpoints, int records)
            throws Exception {
        RunningJob first = runRetainingCheckpoints(pipeline, checkpoints);
        TestPeers.signal(TestPeers.awaitSpawned(TestPeers.faultTarget("python"), records / 3, first), "KILL");
        assertThrows(Exception.class, () -> first.get(2, TimeUnit.MINUTES), "the job outlived its worker");

        LocalRunner.run(new String[] {pipeline.toString(), "--parallelism", parallelism,
                "-Dexecution.state-recovery.path=" + latestCheckpoint(checkpoints).toUri()});
    }

    /** The newest retained checkpoint: the {@code chk-N} directory with the highest N that holds {@code _metadata}. */
    static Path latestCheckpoint(Path checkpoints) throws IOException {
        try (Stream<Path> files = Files.walk(checkpoints)) {
            return files.filter(file -> file.getFileName().toString().equals("_metadata"))
                    .map(Path::getParent)
                    .max(Comparator.comparingLong(chk -> Long.parseLong(chk.getFileName().toString().substring(4))))
                    .orElseThrow(() -> new AssertionError("no completed checkpoint under " + checkpoints));
        }
    }
}
