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
}
