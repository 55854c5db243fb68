package org.flinkbridge.transport.grpc;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import org.flinkbridge.protocol.RingFolder;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.Set;

/**
 * The secret that authenticates every call to a worker's gRPC endpoint (control, data stream, the prototype's
 * service): the bridge sends it as call metadata, the worker refuses a call without it. Both read it from the
 * environment variable {@value #ENV} when set (for a sidecar in another container or under another user), else
 * from the file {@value #FILE_NAME} in the ring directory they already share (mode 0700), which whichever side
 * comes first creates with mode 0600. Another local user can neither read it nor, lacking it, call the worker.
 */
public final class ControlSecret {

    public static final String ENV = "FLINK_BRIDGE_SECRET";
    public static final String FILE_NAME = "control.secret";
    public static final Metadata.Key<String> METADATA =
            Metadata.Key.of("flink-bridge-secret", Metadata.ASCII_STRING_MARSHALLER);
    private static final Set<PosixFilePermission> OWNER_READ_WRITE = PosixFilePermissions.fromString("rw-------");
    private static final int MIN_LENGTH = 16;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final String value;

    private ControlSecret(String value) {
        this.value = value;
    }

    /** The secret of the workers whose ring directory is {@code directory}: {@value #ENV}, else its file there. */
    public static ControlSecret forDirectory(Path directory) throws IOException {
        String fromEnvironment = System.getenv(ENV);
        if (fromEnvironment != null) {
            return checked(fromEnvironment.trim(), ENV);
        }
        return fromFile(directory.resolve(FILE_NAME));
    }

    /**
     * Reads {@code file}, creating it (mode 0600, 32 random bytes in hex) if absent, once its folder is a private
     * ring folder ({@link RingFolder#ensurePrivate}, which creates a missing one).
     */
    static ControlSecret fromFile(Path file) throws IOException {
        RingFolder.ensurePrivate(file.toAbsolutePath().getParent());
        if (!Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
            create(file);
        }
        if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException("control secret " + file + " is not a regular file");
        }
        if (!Files.getOwner(file, LinkOption.NOFOLLOW_LINKS).getName().equals(System.getProperty("user.name"))) {
            throw new IOException("control secret " + file + " does not belong to this user");
        }
        Set<PosixFilePermission> mode = Files.getPosixFilePermissions(file, LinkOption.NOFOLLOW_LINKS);
        if (!mode.equals(OWNER_READ_WRITE)) {
            throw new IOException("control secret " + file + " has mode " + PosixFilePermissions.toString(mode)
                    + "; it must be rw------- so no other user can read it");
        }
        return checked(Files.readString(file, StandardCharsets.US_ASCII).trim(), file.toString());
    }

    /** Writes a new secret beside {@code file} and links it into place, so a reader never sees it half written. */
    private static void create(Path file) throws IOException {
        byte[] random = new byte[32];
        RANDOM.nextBytes(random);
        Path written = Files.createTempFile(file.getParent(), ".control-", ".secret",
                PosixFilePermissions.asFileAttribute(OWNER_READ_WRITE));
        try {
            Files.writeString(written, HexFormat.of().formatHex(random) + "\n", StandardCharsets.US_ASCII);
            Files.createLink(file, written);
        } catch (FileAlreadyExistsException raced) {
            // another process linked its secret first: that one holds
        } finally {
            Files.deleteIfExists(written);
        }
    }

    private static ControlSecret checked(String value, String source) throws IOException {
        if (value.length() < MIN_LENGTH || !StandardCharsets.US_ASCII.newEncoder().canEncode(value)
                || value.chars().anyMatch(c -> c <= ' ')) {
            throw new IOException("the control secret from " + source + " must be at least " + MIN_LENGTH
                    + " printable ASCII characters");
        }
        return new ControlSecret(value);
    }

    /** The bridge side: sends the secret with every call on the channel. */
    public ClientInterceptor clientInterceptor() {
        return new ClientInterceptor() {
            @Override
            public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options,
                                                         Channel next) {
                return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
                    @Override
                    public void start(Listener<R> listener, Metadata headers) {
                        headers.put(METADATA, value);
                        super.start(listener, headers);
                    }
                };
            }
        };
    }

    /** The worker side: refuses, before any service sees it, a call that does not carry the secret. */
    public ServerInterceptor serverInterceptor() {
        byte[] expected = value.getBytes(StandardCharsets.US_ASCII);
        return new ServerInterceptor() {
            @Override
            public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                               ServerCallHandler<Q, R> next) {
                String presented = headers.get(METADATA);
                if (presented == null
                        || !MessageDigest.isEqual(expected, presented.getBytes(StandardCharsets.US_ASCII))) {
                    // Says nothing else: no worker id, no method list, nothing a caller without the secret may learn.
                    call.close(Status.UNAUTHENTICATED.withDescription("the call does not carry this worker's "
                            + "control secret"), new Metadata());
                    return new ServerCall.Listener<>() { };
                }
                return next.startCall(call, headers);
            }
        };
    }
}
