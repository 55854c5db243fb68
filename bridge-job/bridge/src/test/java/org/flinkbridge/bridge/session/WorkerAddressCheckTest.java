package org.flinkbridge.bridge.session;

import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.pipeline.BridgeSettings;
import org.flinkbridge.pipeline.TransportMode;
import org.flinkbridge.proto.control.SessionIdentity;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A worker address is used only when it stays on this host, or when the deployment allows plaintext to another. No
 * name is looked up and nothing is sent: IP literals and localhost need no resolver, names get a stand-in.
 */
class WorkerAddressCheckTest {

    private static final String OPTION = BridgeOptions.ALLOW_PLAINTEXT_REMOTE.key();

    /** For addresses that must be judged as written: an IP literal or localhost is never looked up. */
    private static final WorkerAddressCheck.Resolver NO_LOOKUP = host -> {
        throw new AssertionError("looked up '" + host + "'");
    };

    @ParameterizedTest
    @ValueSource(strings = {"127.0.0.1:50051", "127.45.6.7:1", "[::1]:50051", "localhost:50051", "LocalHost:7",
            "[::ffff:127.0.0.1]:50051", "unix:/dev/shm/flink-bridge-me/worker.sock"})
    void loopbackAddressesAndUnixSocketsAreOnThisHost(String address) {
        assertDoesNotThrow(() -> WorkerAddressCheck.requireOnThisHost(address, false, NO_LOOKUP));
    }

    @ParameterizedTest
    @ValueSource(strings = {"10.1.2.3:5000", "192.168.0.10:50051", "8.8.8.8:53", "192.0.2.1:50051",
            "[2001:db8::1]:50051", "0.0.0.0:50051"})
    void privateAndPublicAddressesAreRefusedNamingTheOption(String address) {
        IllegalArgumentException refused = assertThrows(IllegalArgumentException.class,
                () -> WorkerAddressCheck.requireOnThisHost(address, false, NO_LOOKUP));

        String host = address.substring(0, address.lastIndexOf(':'));
        assertTrue(refused.getMessage().startsWith("worker address '" + address + "' is refused: " + host
                + " is not a loopback address; "), refused.getMessage());
        assertTrue(refused.getMessage().contains("records and the control secret would cross the network in clear"),
                refused.getMessage());
        assertTrue(refused.getMessage().endsWith("or set " + OPTION + "=true to allow it"), refused.getMessage());
        assertEquals(1, refused.getMessage().lines().count());
    }

    @Test
    void theOptionAllowsAnAddressOffThisHost() {
        assertDoesNotThrow(() -> WorkerAddressCheck.requireOnThisHost("10.1.2.3:5000", true, NO_LOOKUP));
        assertDoesNotThrow(() -> WorkerAddressCheck.requireOnThisHost("worker.example:5000", true, NO_LOOKUP));
    }

    @Test
    void aNameIsOnThisHostOnlyWhenEveryAddressItResolvesToIsLoopback() {
        WorkerAddressCheck.Resolver resolver = host -> switch (host) {
            case "sidecar" -> new InetAddress[] {InetAddress.ofLiteral("127.0.0.2"), InetAddress.ofLiteral("::1")};
            case "half-remote" -> new InetAddress[] {InetAddress.ofLiteral("127.0.0.1"),
                    InetAddress.ofLiteral("10.0.0.7")};
            default -> throw new UnknownHostException(host);
        };

        assertDoesNotThrow(() -> WorkerAddressCheck.requireOnThisHost("sidecar:50051", false, resolver));
        IllegalArgumentException halfRemote = assertThrows(IllegalArgumentException.class,
                () -> WorkerAddressCheck.requireOnThisHost("half-remote:50051", false, resolver));
        assertTrue(halfRemote.getMessage().startsWith("worker address 'half-remote:50051' is refused: half-remote "
                + "resolves to 10.0.0.7, which is not a loopback address; "), halfRemote.getMessage());
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> WorkerAddressCheck.requireOnThisHost("nowhere:50051", false, resolver));
        assertTrue(unknown.getMessage().startsWith("worker address 'nowhere:50051' is refused: nowhere does not "
                + "resolve to an address here; "), unknown.getMessage());
    }

    @Test
    void aSessionRefusesAWorkerOffThisHostBeforeConnecting() {
        // 192.0.2.0/24 is TEST-NET-1: never routed, and never contacted here either, since the refusal comes first.
        SessionSpec spec = new SessionSpec("remote-worker", 0, "main",
                List.of(new SessionSpec.Step("mark", "append_field", "{\"field\":\"seen\",\"value\":1}")),
                TransportMode.GRPC_STREAM, "192.0.2.1:50051", BridgeOptions.ALLOW_PLAINTEXT_REMOTE.defaultValue(),
                List.of(), BridgeSettings.DEFAULT_MAX_IN_FLIGHT, BridgeSettings.DEFAULT_WORKER_TIMEOUT_MS,
                BridgeOptions.GRPC_BATCH_FRAMES.defaultValue(), SessionSpec.ShmSettings.defaults(),
                SessionSpec.Recovery.failover(), BridgeOptions.MAX_SNAPSHOT_SIZE.defaultValue().getBytes());
        SessionIdentity identity = SessionIdentity.newBuilder()
                .setJobName("remote-worker").setOperatorName("main").setParallelism(1).build();

        IllegalArgumentException refused = assertThrows(IllegalArgumentException.class,
                () -> BridgeSession.open(spec, identity));

        assertTrue(refused.getMessage().startsWith("worker address '192.0.2.1:50051' is refused"),
                refused.getMessage());
        assertTrue(refused.getMessage().contains(OPTION + "=true"), refused.getMessage());
    }
}
