package org.flinkbridge.worker.sdk;

import com.fasterxml.jackson.databind.JsonNode;

/** What a step is told when it opens: its name in the pipeline file, its config block, and its session. */
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
}
