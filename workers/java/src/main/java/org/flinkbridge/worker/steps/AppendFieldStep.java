package org.flinkbridge.worker.steps;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.BooleanNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;

import java.io.IOException;

/** {@code append_field}: the prototype's example logic, adding one field to a JSON object payload. */
final class AppendFieldStep implements Step {

    private static final ObjectMapper JSON = new ObjectMapper();

    private String stepName;
    private String field;
    private JsonNode value;

    @Override
    public void open(StepContext context) {
        StepConfig config = new StepConfig(context);
        stepName = context.stepName();
        field = config.string("field", "processed");
        value = config.node("value", BooleanNode.TRUE);
    }

    @Override
    public void process(Record input, Emitter output) throws IOException {
        JsonNode payload;
        try {
            payload = JSON.readTree(input.payload());
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IOException("step '" + stepName + "' (append_field): the payload is not JSON: "
                    + e.getOriginalMessage(), e);
        }
        if (!(payload instanceof ObjectNode object)) {
            throw new IOException("step '" + stepName + "' (append_field): the payload is not a JSON object but "
                    + (payload == null || payload.isMissingNode() ? "empty" : payload.getNodeType()));
        }
        object.set(field, value);
        output.emit(input.withPayload(JSON.writeValueAsBytes(object)));
    }
}
