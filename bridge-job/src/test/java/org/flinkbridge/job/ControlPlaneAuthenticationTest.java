package org.flinkbridge.job;

import io.grpc.ManagedChannel;
import org.flinkbridge.proto.control.BridgeControlGrpc;
import org.flinkbridge.proto.control.HealthRequest;
import org.flinkbridge.transport.grpc.ControlSecret;
import org.flinkbridge.transport.grpc.GrpcChannels;
import org.flinkbridge.transport.shm.RingFiles;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every call to a worker is authenticated (the hardening issue, point 1): another local user, and a client of
 * the same user that does not present the control secret, call every method of every service a worker serves
 * and each is refused with UNAUTHENTICATED and nothing else (no worker id, no session, no method list). The
 * second user cannot read the secret file either. With the secret, the same call goes through.
 */
class ControlPlaneAuthenticationTest {

    /** Every method a worker serves, called without the secret, with empty requests. */
    private static final String ATTACKER = """
            import sys, grpc
            methods = [("/flinkbridge.v1.BridgeControl/" + m, "unary") for m in
                       ("OpenSession", "RestoreState", "SnapshotState", "NotifyCheckpoint", "CloseSession", "Health")]
            methods += [("/flink_worker.FlinkWorkerService/" + m, "unary") for m in
                        ("ProcessMessage", "ProcessWatermark", "AddToWindow", "TriggerWindow")]
            methods += [("/flinkbridge.v1.BridgeData/Exchange", "stream")]
            channel = grpc.insecure_channel(sys.argv[1])
            for path, kind in methods:
                try:
                    if kind == "unary":
                        channel.unary_unary(path)(b"", timeout=10)
                    else:
                        list(channel.stream_stream(path)(iter([b""]), timeout=10,
                             metadata=[("flink-bridge-session", "w1-0"), ("flink-bridge-token", "x")]))
                    print(path, "ANSWERED")
                except grpc.RpcError as e:
                    print(path, e.code().name, e.details())
            """;
    private static final int METHODS = 11;
    private static final String REFUSAL = "UNAUTHENTICATED the call does not carry this worker's control secret";
    private static final String NOBODY = "65534";

    @ParameterizedTest
    @ValueSource(strings = {"java", "python"})
    void callsWithoutTheSecretAreRefusedAndTellNothing(String worker) throws Exception {
        Process process = worker.equals("java") ? TestPeers.startWorker() : startPythonWorker();
        try {
            String address = TestPeers.workerAddress(process);

            List<String> sameUser = attack(address, false);
            assertEquals(METHODS, sameUser.size(), String.join("\n", sameUser));
            sameUser.forEach(line -> assertTrue(line.endsWith(REFUSAL), line));

            if (isRoot()) {
                List<String> otherUser = attack(address, true);
                assertEquals(METHODS, otherUser.size(), String.join("\n", otherUser));
                otherUser.forEach(line -> assertTrue(line.endsWith(REFUSAL), line));
                String secretFile = RingFiles.defaultDirectory().resolve(ControlSecret.FILE_NAME).toString();
                Process reading = asNobody(List.of("cat", secretFile));
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

    private static Process startPythonWorker() throws IOException {
        return new ProcessBuilder(System.getProperty("flink-bridge.worker.python.executable"),
                System.getProperty("flink-bridge.worker.python.runtime"), "--port", "0")
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
    }

    /** The attacker's one line per method: path, status code and description. */
    private static List<String> attack(String address, boolean asAnotherUser) throws Exception {
        List<String> command = List.of(System.getProperty("flink-bridge.worker.python.executable"), "-c", ATTACKER,
                address);
        Process attacker = asAnotherUser ? asNobody(command)
                : new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(attacker.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(attacker.waitFor(60, TimeUnit.SECONDS), output);
        assertEquals(0, attacker.exitValue(), output);
        return new ArrayList<>(output.lines().toList());
    }

    private static Process asNobody(List<String> command) throws IOException {
        List<String> wrapped = new ArrayList<>(List.of("setpriv", "--reuid=" + NOBODY, "--regid=" + NOBODY,
                "--clear-groups"));
        wrapped.addAll(command);
        return new ProcessBuilder(wrapped).redirectErrorStream(true).start();
    }

    private static boolean isRoot() {
        return "root".equals(System.getProperty("user.name"));
    }
}
