package org.flinkbridge.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.job.worker.SessionSpec;
import org.flinkbridge.worker.sdk.Segment;
import org.flinkbridge.worker.sdk.StepContext;
import org.flinkbridge.worker.steps.StepFactory;

import java.io.IOException;

/** Makes a step's segment in this JVM, as a worker would for a session, for the in-process baseline. */
final class InProcessSegments {

    private InProcessSegments() {}

    static Segment create(SessionSpec.Step step) throws IOException {
        JsonNode config = new ObjectMapper().readTree(step.configJson());
        return StepFactory.create(step.type(), new StepContext() {
            @Override
            public String stepName() {
                return step.name();
            }

            @Override
            public JsonNode config() {
                return config;
            }

            @Override
            public String sessionName() {
                return "in-process baseline";
            }
        });
    }
}
