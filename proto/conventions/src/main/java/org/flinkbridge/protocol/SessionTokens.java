package org.flinkbridge.protocol;

import java.security.SecureRandom;
import java.util.HexFormat;

/**
 * A session's token: the secret its data plane presents (written into its ring file's header, or sent with its
 * gRPC stream), 128 random bits as 32 hex characters, which fits the ring header's token field.
 */
public final class SessionTokens {

    private static final SecureRandom RANDOM = new SecureRandom();

    private SessionTokens() {}

    public static String random() {
        return HexFormat.of().formatHex(RANDOM.generateSeed(16));
    }
}
