package org.flinkbridge.runner;

import io.grpc.ManagedChannel;
import org.flinkbridge.proto.control.BridgeControlGrpc;
import org.flinkbridge.proto.control.HealthRequest;
import org.flinkbridge.transport.grpc.ControlSecret;
import org.flinkbridge.transport.grpc.GrpcChannels;
import org.flinkbridge.transport.shm.RingFiles;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every call to a worker is authenticated (the hardening issue, point 1): another local user, and a client of
 * the same user that does not present the control secret, call every method of every service a worker serves
 * and each is refused with UNAUTHENTICATED and nothing else (no worker id, no session, no method list); on a
 * spawned worker's Unix domain socket the other user cannot even connect. The second user cannot read the
 * secret file either. With the secret, the same call goes through.
 */
class ControlPlaneAuthenticationTest {

    /** Every method a worker serves, called without the secret, with empty requests. */
    private static final String ATTACKER = """
            import os, sys, grpc
            methods = [("/flinkbridge.v1.BridgeControl/" + m, "unary") for m in
                       ("OpenSession", "NotifyCheckpoint", "CloseSession", "Health")]
            methods += [("/flinkbridge.v1.BridgeControl/RestoreState", "client_stream"),
                        ("/flinkbridge.v1.BridgeControl/SnapshotState", "server_stream")]
            methods += [("/flink_worker.FlinkWorkerService/" + m, "unary") for m in
                        ("ProcessMessage", "ProcessWatermark", "AddToWindow", "TriggerWindow")]
            methods += [("/flinkbridge.v1.BridgeData/Exchange", "stream")]
            channel = grpc.insecure_channel(sys.argv[1])
            for path, kind in methods:
                try:
                    if kind == "unary":
                        channel.unary_unary(path)(b"", timeout=10)
                    elif kind == "client_stream":
                        channel.stream_unary(path)(iter([b""]), timeout=10)
                    elif kind == "server_stream":
                        list(channel.unary_stream(path)(b"", timeout=10))
                    else:
                        list(channel.stream_stream(path)(iter([b""]), timeout=10,
                             metadata=[("flink-bridge-session", "w1-0"), ("flink-bridge-token", "x")]))
                    print(path, "ANSWERED")
                except grpc.RpcError as e:
                    print(path, e.code().name, e.details())
            sys.stdout.flush()
            # grpcio 1.51 can hang in interpreter shutdown with a channel still open: leave at once.
            os._exit(0)
            """;
    private static final int METHODS = 11;
    private static final String REFUSAL = "UNAUTHENTICATED the call does not carry this worker's control secret";
    private static final String NOBODY = "65534";

    /**
     * @param worker    java or python
     * @param listening tcp (a sidecar's default: loopback, secret required) or unix (a spawned worker's: a Unix
     *                  domain socket in the private ring directory, which another user cannot even connect to)
     */
    @ParameterizedTest
    @CsvSource({"java, tcp", "python, tcp", "java, unix", "python, unix"})
    void callsWithoutTheSecretAreRefusedAndTellNothing(String worker, String listening) throws Exception {
        List<String> command = new ArrayList<>(worker.equals("java")
                ? List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                        "--enable-native-access=ALL-UNNAMED", "-jar", TestPipelines.workerJar())
                : List.of(System.getProperty("flink-bridge.worker.python.executable"),
                        System.getProperty("flink-bridge.worker.python.runtime")));
        command.addAll(listening.equals("unix") ? List.of("--unix-socket") : List.of("--port", "0"));
        Process process = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try {
            String address = TestPeers.workerAddress(process);
            assertEquals(listening.equals("unix"), address.startsWith("unix:"), address);

            List<String> sameUser = attack(address, false);
            assertEquals(METHODS, sameUser.size(), String.join("\n", sameUser));
            sameUser.forEach(line -> assertTrue(line.endsWith(REFUSAL), line));

            if (isRoot()) {
                List<String> otherUser = attack(address, true);
                assertEquals(METHODS, otherUser.size(), String.join("\n", otherUser));
                // Over the socket another user cannot connect at all (the directory is 0700); over TCP it is refused.
                String expected = listening.equals("unix") ? " UNAVAILABLE " : REFUSAL;
                otherUser.forEach(line -> assertTrue(line.contains(expected), line));
                String secretFile = RingFiles.defaultDirectory().resolve(ControlSecret.FILE_NAME).toString();
                Process reading = new ProcessBuilder(asNobody(List.of("cat", secretFile))).redirectErrorStream(true)
                        .start();
                String read = new String(reading.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                assertFalse(reading.waitFor(10, TimeUnit.SECONDS) && reading.exitValue() == 0,
                        "another user read the control secret: " + read);
            }

            ManagedChannel channel = GrpcChannels.open(address, ControlSecret.forDirectory(RingFiles.defaultDirectory()));
            try {
                assertTrue(BridgeControlGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                        .health(HealthRequest.getDefaultInstance()).getWorkerId().startsWith("w"));
            } finally {
                GrpcChannels.close(channel);
            }
        } finally {
            process.descendants().forEach(ProcessHandle::destroyForcibly);
            process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** The attacker's one line per method: path, status code and description. */
    private static List<String> attack(String address, boolean asAnotherUser) throws Exception {
        List<String> command = List.of(System.getProperty("flink-bridge.worker.python.executable"), "-c", ATTACKER,
                address);
        Path log = Files.createTempFile("attacker-", ".log");
        try {
            List<String> started = asAnotherUser ? asNobody(command) : command;
            Process attacker = new ProcessBuilder(started).redirectErrorStream(true)
                    .redirectOutput(log.toFile()).start();
            boolean ended = attacker.waitFor(60, TimeUnit.SECONDS);
            if (!ended) {
                attacker.destroyForcibly().waitFor();
            }
            String output = Files.readString(log, StandardCharsets.UTF_8);
            assertTrue(ended, "the attacker did not end within 60 s: " + output);
            assertEquals(0, attacker.exitValue(), output);
            return new ArrayList<>(output.lines().toList());
        } finally {
            Files.deleteIfExists(log);
        }
    }

    private static List<String> asNobody(List<String> command) {
        List<String> wrapped = new ArrayList<>(List.of("setpriv", "--reuid=" + NOBODY, "--regid=" + NOBODY,
                "--clear-groups"));
        wrapped.addAll(command);
        return wrapped;
    }

    private static boolean isRoot() {
        return "root".equals(System.getProperty("user.name"));
    }
}
