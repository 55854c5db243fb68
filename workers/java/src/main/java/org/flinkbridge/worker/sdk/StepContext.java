package org.flinkbridge.worker.sdk;

import com.fasterxml.jackson.databind.JsonNode;

import java.time.Duration;

/**
 * What a step is told when it opens: its name in the pipeline file, its config block, and its session; and where it
 * declares its cells, the per-key state the bridge keeps in Flink's keyed state, and its timers.
 */
public interface StepContext {

    /** The step's {@code step_name}. */
    String stepName();

    /** The step's {@code config} block (an empty object when the pipeline gives none). */
    JsonNode config();

    /** The session this instance serves, for log lines and error messages. */
    String sessionName();

    /**
     * Processing time (ms since the epoch) as of the input being processed: the bridge's clock, stamped on the
     * inputs and journaled with them, so that a step that reads time here gives the same outputs when a recovery
     * in place replays its inputs. A step that reads {@link System#currentTimeMillis()} instead cannot recover in
     * place (docs/steps.md).
     */
    long currentTimeMillis();

    /**
     * Declares a value cell named {@code name} (unique within the step), in {@link Step#open} only. Its value is
     * the current record's key's (docs/steps.md, "Cells"); a segment whose steps declare cells runs only keyed.
     *
     * @throws IllegalArgumentException when the step already declared a cell of that name
     */
    default ValueCell valueCell(String name) {
        throw new UnsupportedOperationException("this context keeps no cells");
    }

    /**
     * A value cell whose value is gone {@code ttl} of processing time (the bridge's clock) after it was last set:
     * {@link ValueCell#get} returns null from then on.
     */
    default ValueCell valueCell(String name, Duration ttl) {
        throw new UnsupportedOperationException("this context keeps no cells");
    }

    /** Declares a map cell named {@code name} (unique within the step), in {@link Step#open} only. */
    default MapCell mapCell(String name) {
        throw new UnsupportedOperationException("this context keeps no cells");
    }

    /** A map cell each of whose entries is gone {@code ttl} of processing time after it was last put. */
    default MapCell mapCell(String name, Duration ttl) {
        throw new UnsupportedOperationException("this context keeps no cells");
    }

    /**
     * Declares that the step sets timers, in {@link Step#open} only, and gives its handle on them (the same one each
     * call); {@link Step#onTimer} is called when one fires (docs/steps.md, "Timers"). A segment whose steps declare
     * timers runs only keyed.
     */
    default Timers timers() {
        throw new UnsupportedOperationException("this context keeps no timers");
    }
}
