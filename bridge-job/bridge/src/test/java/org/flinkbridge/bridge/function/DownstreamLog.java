package org.flinkbridge.bridge.function;


import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.flinkbridge.records.BridgeRecord;

/**
 * What an exchange sends downstream, as lines in order (payloads as text, "watermark T", "dead letter P from step
 * S: CLASS"), and its recoveries.
 */
final class DownstreamLog implements SessionExchange.Downstream {

    final List<String> lines = new ArrayList<>();
    final List<InPlaceRecovery.Recovery> recoveries = new ArrayList<>();
    final List<BridgeRecord> deadLetters = new ArrayList<>();

    @Override
    public void emit(BridgeRecord output) {
        lines.add(new String(output.payload, StandardCharsets.UTF_8));
    }

    @Override
    public void emitWatermark(long watermark) {
        lines.add("watermark " + watermark);
    }

    @Override
    public void deadLetter(BridgeRecord letter) {
        deadLetters.add(letter);
        lines.add("dead letter " + new String(letter.payload, StandardCharsets.UTF_8) + " from step "
                + letter.headers.get(DeadLetters.STEP) + ": " + letter.headers.get(DeadLetters.ERROR_CLASS));
    }

    @Override
    public void arrived(BridgeRecord output) {}

    @Override
    public void recovered(InPlaceRecovery.Recovery recovery) {
        recoveries.add(recovery);
    }
}
