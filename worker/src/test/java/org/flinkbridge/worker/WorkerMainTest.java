package org.flinkbridge.worker;

import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WorkerMainTest {

    private static final String WORKER = "'" + Path.of(System.getProperty("java.home"), "bin", "java")
            + "' --enable-native-access=ALL-UNNAMED -cp '" + System.getProperty("java.class.path") + "' "
            + WorkerMain.class.getName() + " --port 0";

    /** A worker spawned by a TaskManager must not outlive it when the TaskManager is killed. */
    @Test
    void aWorkerGivenItsParentsPidEndsWhenItsParentDoes() throws Exception {
        // The shell is the parent: it starts the worker with its own pid, says the worker's pid, waits for
        // the worker's first line, then exits.
        Process shell = new ProcessBuilder("bash", "-c",
                WORKER + " --parent-pid $$ > >(head -n 1 > /dev/null) & echo $!; sleep 3").start();
        long workerPid = Long.parseLong(new BufferedReader(
                new InputStreamReader(shell.getInputStream(), StandardCharsets.UTF_8)).readLine().trim());
        ProcessHandle handle = ProcessHandle.of(workerPid).orElseThrow();
        try {
            assertTrue(shell.waitFor(30, TimeUnit.SECONDS), "the parent shell did not end");
            assertTrue(handle.onExit().get(15, TimeUnit.SECONDS) != null);
            assertFalse(handle.isAlive(), "the worker outlived its parent");
        } finally {
            handle.destroyForcibly();
        }
    }

    /** A spawner that died before the worker's JVM was up is noticed at once, not waited for forever. */
    @Test
    void aWorkerWhoseSpawnerIsAlreadyGoneExitsBeforeServing() throws Exception {
        // The pid given is not the worker's parent (this test's JVM is its parent): as if the spawner had died.
        Process worker = new ProcessBuilder("bash", "-c", "exec " + WORKER + " --parent-pid 1")
                .redirectErrorStream(true).start();
        String output = new String(worker.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(worker.waitFor(30, TimeUnit.SECONDS), "the worker did not end");
        assertEquals(ParentWatch.EXIT_PARENT_GONE, worker.exitValue(), output);
        assertFalse(output.contains(WorkerMain.LISTENING_PREFIX), "the worker served although its spawner is gone: "
                + output);
        assertTrue(output.contains("the process that spawned it (1) is gone"), output);
    }
}
