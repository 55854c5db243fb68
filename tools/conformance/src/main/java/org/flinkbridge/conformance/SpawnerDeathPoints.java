package org.flinkbridge.conformance;

import org.flinkbridge.conformance.WorkerUnderTest.KitTransport;
import org.flinkbridge.protocol.WorkerLaunch;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * The lifetime rule of the launch contract (docs/protocol.md, "Launch and lifetime of a spawned worker"): a
 * spawned worker ends within seconds once its spawner dies, at any moment, start-up included. Each point starts
 * the worker under a shell that stands for the TaskManager, SIGKILLs that shell at one moment (while the worker's
 * runtime comes up, or while it serves a session) and checks that the worker and every process it started are gone.
 */
final class SpawnerDeathPoints {

    /** Moments after the worker process exists: before its runtime is up, while it starts, about when it serves. */
    private static final long[] KILL_DELAYS_MILLIS = {0, 150, 500};
    /** How long the worker may take to see its spawner gone and end: "within seconds". */
    private static final long EXIT_WITHIN_MILLIS = 10_000;
    /** The stand-in TaskManager: starts the worker with its own pid as the spawner's, then waits for it. */
    private static final String SPAWNER_SCRIPT = "\"$@\" " + WorkerLaunch.PARENT_PID_OPTION + " $$ & wait";
    private static final long START_TIMEOUT_MILLIS = 60_000;

    private final List<String> command;
    private final Path ringDirectory;
    private final Report report;

    SpawnerDeathPoints(List<String> command, Path ringDirectory, Report report) {
        this.command = WorkerLaunch.onThisJdk(command);
        this.ringDirectory = ringDirectory;
        this.report = report;
    }

    void run(KitTransport transport) {
        for (long delay : KILL_DELAYS_MILLIS) {
            report.check("lifetime: the worker ends when its spawner is killed " + delay + " ms after starting it",
                    () -> {
                        Process spawner = spawn(ProcessBuilder.Redirect.DISCARD);
                        ProcessHandle worker = workerOf(spawner);
                        Thread.sleep(delay);
                        killAndRequireGone(spawner, List.of(worker));
                    });
        }
        report.check("lifetime: the worker and the processes it started end when its spawner is killed while it "
                + "serves a session (" + transport.flag + ")", () -> {
            Process spawner = spawn(ProcessBuilder.Redirect.PIPE);
            ProcessHandle worker = workerOf(spawner);
            try (WorkerUnderTest served = WorkerUnderTest.at(listeningAddress(spawner), ringDirectory);
                 WorkerUnderTest.Session session = served.openAnswered(transport)) {
                List<ProcessHandle> processes = new ArrayList<>(List.of(worker));
                processes.addAll(worker.descendants().toList());
                killAndRequireGone(spawner, processes);
            }
        });
    }

    private Process spawn(ProcessBuilder.Redirect output) throws IOException {
        List<String> shell = new ArrayList<>(List.of("/bin/sh", "-c", SPAWNER_SCRIPT, "spawner"));
        shell.addAll(command);
        return new ProcessBuilder(shell).redirectErrorStream(true).redirectOutput(output).start();
    }

    /** The worker process the spawner started, once it exists (its runtime may not be up yet). */
    private static ProcessHandle workerOf(Process spawner) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(START_TIMEOUT_MILLIS);
        while (System.nanoTime() < deadline) {
            Optional<ProcessHandle> child = spawner.toHandle().children().findFirst();
            if (child.isPresent()) {
                return child.get();
            }
            if (!spawner.isAlive()) {
                throw new Report.Broken("the spawner shell ended (code " + spawner.exitValue()
                        + ") before the worker process appeared");
            }
            Thread.sleep(1);
        }
        spawner.destroyForcibly();
        throw new Report.Broken("no worker process appeared within " + START_TIMEOUT_MILLIS + " ms");
    }

    /** Reads the worker's output (through the spawner's pipe) up to its listening line, then drains the rest. */
    private static String listeningAddress(Process spawner) throws IOException, Report.Broken {
        BufferedReader lines = new BufferedReader(new InputStreamReader(spawner.getInputStream(), StandardCharsets.UTF_8));
        String line;
        while ((line = lines.readLine()) != null) {
            if (line.startsWith(WorkerLaunch.LISTENING_PREFIX)) {
                Thread drain = new Thread(() -> drain(lines), "spawned-worker-output");
                drain.setDaemon(true);
                drain.start();
                return line.substring(WorkerLaunch.LISTENING_PREFIX.length()).trim();
            }
        }
        spawner.destroyForcibly();
        throw new Report.Broken("the worker's output ended before its listening line");
    }

    /** Reads the worker's output to its end, so a full pipe never holds the worker up. */
    private static void drain(BufferedReader lines) {
        try {
            while (lines.readLine() != null) {
                // only read: what a worker says after its listening line is not part of these points
            }
        } catch (IOException e) {
            // the pipe closed with the spawner's process
        }
    }

    private static void killAndRequireGone(Process spawner, List<ProcessHandle> processes) throws Exception {
        spawner.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(EXIT_WITHIN_MILLIS);
        List<ProcessHandle> left;
        do {
            left = processes.stream().filter(SpawnerDeathPoints::running).toList();
            if (left.isEmpty()) {
                return;
            }
            Thread.sleep(50);
        } while (System.nanoTime() < deadline);
        List<String> named = left.stream().map(p -> p.pid() + " (" + p.info().commandLine().orElse("?") + ")").toList();
        left.forEach(ProcessHandle::destroyForcibly);
        throw new Report.Broken("still running " + EXIT_WITHIN_MILLIS + " ms after its spawner was killed (killed "
                + "now): " + String.join(", ", named));
    }

    /** Alive and not a zombie: an ended orphan waits for its new parent to reap it, and that is not ours to do. */
    private static boolean running(ProcessHandle process) {
        if (!process.isAlive()) {
            return false;
        }
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(process.pid()), "stat"));
            return stat.charAt(stat.lastIndexOf(')') + 2) != 'Z';
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }
}
