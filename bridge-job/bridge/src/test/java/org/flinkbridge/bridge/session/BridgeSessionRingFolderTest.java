package org.flinkbridge.bridge.session;

import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.pipeline.BridgeSettings;
import org.flinkbridge.pipeline.TransportMode;
import org.flinkbridge.proto.control.SessionIdentity;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A session whose ring folder another user made first is refused before the bridge spawns a worker into it, reads
 * or writes the control secret there or calls a socket in it, naming the folder, its owner and its mode.
 */
class BridgeSessionRingFolderTest {

    @Test
    void aSessionIsRefusedBeforeItUsesARingFolderOfAnotherUser(@TempDir Path dir) throws IOException {
        assumeTrue("root".equals(System.getProperty("user.name")), "giving a folder to another user needs root");
        Path folder = Files.createDirectory(dir.resolve("rings"));
        Files.setPosixFilePermissions(folder, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.setAttribute(folder, "unix:uid", 65534);
        Path spawnedMark = dir.resolve("spawned");
        SessionSpec spec = new SessionSpec("ring-folder", 0, "main",
                List.of(new SessionSpec.Step("mark", "append_field", "{\"field\":\"seen\",\"value\":1}")),
                TransportMode.SHM, null, false, List.of("sh", "-c", "touch " + spawnedMark),
                BridgeSettings.DEFAULT_MAX_IN_FLIGHT, 5_000, BridgeOptions.GRPC_BATCH_FRAMES.defaultValue(),
                new SessionSpec.ShmSettings(folder.toString(), 4096, 5_000),
                SessionSpec.Recovery.defaults().withoutStandby(),
                BridgeOptions.MAX_SNAPSHOT_SIZE.defaultValue().getBytes());

        String refusal = assertThrows(IOException.class, () -> BridgeSession.open(spec,
                SessionIdentity.newBuilder().setJobName("ring-folder").setParallelism(1).build())).getMessage();

        assertTrue(refusal.contains("ring folder " + folder + " is a folder owned by uid 65534 with mode 0755"),
                refusal);
        assertFalse(Files.exists(spawnedMark), "a worker was spawned into the folder");
        try (Stream<Path> written = Files.list(folder)) {
            assertEquals(List.of(), written.toList(), "the bridge wrote into a folder it refused");
        }
    }
}
