package org.flinkbridge.bridge.session;

import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.transport.grpc.GrpcChannels;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Arrays;
import java.util.Optional;

/**
 * Keeps the worker on this host: every gRPC channel to a worker is plaintext ({@link GrpcChannels}), so records and
 * the control secret stay off the network only while the worker's address is a Unix socket or a loopback address.
 * Any other address is refused unless {@link BridgeOptions#ALLOW_PLAINTEXT_REMOTE} is set.
 */
public final class WorkerAddressCheck {

    /** Looks a host name up, as {@link InetAddress#getAllByName} does; tests give their own, to look none up. */
    @FunctionalInterface
    interface Resolver {
        InetAddress[] resolve(String host) throws UnknownHostException;
    }

    private WorkerAddressCheck() {}

    /**
     * Refuses a worker address ({@code HOST:PORT} or {@code unix:PATH}) that may leave this host, unless
     * {@code allowPlaintextRemote}; the error names the address and the option that allows it.
     */
    public static void requireOnThisHost(String address, boolean allowPlaintextRemote) {
        requireOnThisHost(address, allowPlaintextRemote, InetAddress::getAllByName);
    }

    static void requireOnThisHost(String address, boolean allowPlaintextRemote, Resolver resolver) {
        if (allowPlaintextRemote || address.startsWith(GrpcChannels.UNIX_PREFIX)) {
            return;
        }
        String host = GrpcChannels.HostPort.parse(address).host();
        notOnThisHost(host, resolver).ifPresent(reason -> {
            throw new IllegalArgumentException("worker address '" + address + "' is refused: " + reason
                    + "; gRPC to a worker is plaintext, so records and the control secret would cross the network"
                    + " in clear. Name a unix:PATH socket or a loopback address (127.0.0.0/8, ::1, localhost), or set "
                    + BridgeOptions.ALLOW_PLAINTEXT_REMOTE.key() + "=true to allow it");
        });
    }

    /** Why {@code host} may not be on this host; empty when it is a loopback address or names only such. */
    private static Optional<String> notOnThisHost(String host, Resolver resolver) {
        // localhost is the loopback interface by definition (RFC 6761), whatever a resolver makes of it.
        if (host.equalsIgnoreCase("localhost")) {
            return Optional.empty();
        }
        Optional<InetAddress> literal = ipLiteral(host);
        if (literal.isPresent()) {
            return literal.get().isLoopbackAddress() ? Optional.empty()
                    : Optional.of(host + " is not a loopback address");
        }
        try {
            return Arrays.stream(resolver.resolve(host))
                    .filter(address -> !address.isLoopbackAddress())
                    .findFirst()
                    .map(remote -> host + " resolves to " + remote.getHostAddress()
                            + ", which is not a loopback address");
        } catch (UnknownHostException e) {
            return Optional.of(host + " does not resolve to an address here");
        }
    }

    /** {@code host} as an IPv4 or IPv6 address ({@code [::1]} too) when it is written as one. */
    private static Optional<InetAddress> ipLiteral(String host) {
        try {
            return Optional.of(InetAddress.ofLiteral(host));
        } catch (IllegalArgumentException notALiteral) {
            return Optional.empty();
        }
    }
}
