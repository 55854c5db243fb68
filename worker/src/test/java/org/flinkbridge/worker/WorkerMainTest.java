package org.flinkbridge.worker;

import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WorkerMainTest {

    /** A worker spawned by a TaskManager must not outlive it when the TaskManager is killed. */
    @Test
    void aWorkerStartedWithExitWithParentEndsWhenItsParentDoes() throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String worker = "'" + java + "' --enable-native-access=ALL-UNNAMED -cp '" + System.getProperty("java.class.path")
                + "' " + WorkerMain.class.getName() + " --port 0 --exit-with-parent";
        // The shell is the parent: it starts the worker, says its pid, waits for its first line, then exits.
        Process shell = new ProcessBuilder("bash", "-c",
                worker + " > >(head -n 1 > /dev/null) & echo $!; sleep 3").start();
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
}
