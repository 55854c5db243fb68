package org.flinkbridge.worker;

import org.flinkbridge.protocol.WorkerLaunch;

import io.grpc.ManagedChannel;
import org.flinkbridge.proto.control.BridgeControlGrpc;
import org.flinkbridge.proto.control.OpenSessionRequest;
import org.flinkbridge.proto.control.ProtocolVersion;
import org.flinkbridge.proto.control.SessionIdentity;
import org.flinkbridge.proto.control.SessionRef;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.proto.control.TransportKind;
import org.flinkbridge.transport.grpc.ControlSecret;
import org.flinkbridge.transport.grpc.GrpcChannels;
import org.flinkbridge.transport.shm.RingFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class WorkerMainTest {

    private static final String JAVA_WORKER = "'" + Path.of(System.getProperty("java.home"), "bin", "java")
            + "' --enable-native-access=ALL-UNNAMED -cp '" + System.getProperty("java.class.path") + "' "
            + WorkerMain.class.getName();
    private static final String WORKER = JAVA_WORKER + " --port 0";

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
        assertFalse(output.contains(WorkerLaunch.LISTENING_PREFIX), "the worker served although its spawner is gone: "
                + output);
        assertTrue(output.contains("the process that spawned it (1) is gone"), output);
    }

    /** A worker on its own logs at INFO on standard error, including each session's opening and end. */
    @Test
    void aWorkerLogsItsSessionsAtInfoOnStandardError(@TempDir Path dir) throws Exception {
        Path log = dir.resolve("worker.log");
        Process worker = new ProcessBuilder("bash", "-c", "exec " + WORKER)
                .redirectError(log.toFile()).start();
        try {
            String listening = new BufferedReader(new InputStreamReader(worker.getInputStream(),
                    StandardCharsets.UTF_8)).readLine();
            assertTrue(listening != null && listening.startsWith(WorkerLaunch.LISTENING_PREFIX), listening);
            ManagedChannel channel = GrpcChannels.open(listening.substring(WorkerLaunch.LISTENING_PREFIX.length()),
                    ControlSecret.forDirectory(RingFiles.defaultDirectory()));
            try {
                var control = BridgeControlGrpc.newBlockingStub(channel)
                        .withDeadlineAfter(10, TimeUnit.SECONDS);
                String id = control.openSession(OpenSessionRequest.newBuilder()
                        .setProtocolVersion(ProtocolVersion.PROTOCOL_VERSION_CURRENT)
                        .setIdentity(SessionIdentity.newBuilder().setJobName("logged")
                                .setOperatorName("op").setParallelism(1))
                        .setTransport(TransportKind.TRANSPORT_KIND_GRPC)
                        .setToken("t")
                        .addSteps(StepSpec.newBuilder().setName("a")
                                .setType("append_field"))
                        .build()).getSessionId();
                control.closeSession(SessionRef.newBuilder().setSessionId(id).build());
            } finally {
                GrpcChannels.close(channel);
            }
        } finally {
            worker.destroy();
            worker.waitFor(30, TimeUnit.SECONDS);
        }
        String logged = Files.readString(log);
        assertTrue(logged.lines().anyMatch(line -> line.contains(" INFO ") && line.contains("opened session ")
                && line.contains("job 'logged'")), logged);
        assertTrue(logged.lines().anyMatch(line -> line.contains(" INFO ") && line.contains("closed session ")),
                logged);
    }

    /**
     * A ring folder someone else made first (in /dev/shm anyone can) stops the worker before it writes the control
     * secret or its socket there, with an error naming the folder, its owner and its mode.
     */
    @Test
    void aWorkerRefusesARingFolderOfAnotherUserAndWritesNothingThere(@TempDir Path dir) throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "giving a folder to another user needs root");
        Path folder = Files.createDirectory(dir.resolve("rings"));
        Files.setPosixFilePermissions(folder, PosixFilePermissions.fromString("rwxrwxrwx"));
        Files.setAttribute(folder, "unix:uid", 65534);
        Path output = dir.resolve("worker.out");
        ProcessBuilder spawned = new ProcessBuilder("bash", "-c", "exec " + JAVA_WORKER + " --unix-socket --ring-dir '"
                + folder + "'").redirectErrorStream(true).redirectOutput(output.toFile());
        spawned.environment().remove(ControlSecret.ENV);
        Process worker = spawned.start();
        try {
            assertTrue(worker.waitFor(30, TimeUnit.SECONDS), "the worker serves: " + Files.readString(output));
        } finally {
            worker.destroyForcibly();
        }

        String printed = Files.readString(output);
        assertEquals(2, worker.exitValue(), printed);
        assertTrue(printed.contains("ring folder " + folder + " is a folder owned by uid 65534 with mode 0777"),
                printed);
        try (Stream<Path> written = Files.list(folder)) {
            assertEquals(List.of(), written.toList(), "the worker wrote into a folder it refused");
        }
    }
}
