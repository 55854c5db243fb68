package org.flinkbridge.job.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.api.common.serialization.Encoder;
import org.flinkbridge.records.BridgeRecord;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Map;
import java.util.TreeMap;

/**
 * A dead letter in a file: one JSON object per line, {@code {"timestamp", "headers", "payload"}}, the payload as
 * text when it is UTF-8 and as {@code payload_base64} when it is not, so nothing of the record is lost.
 */
final class DeadLetterLines implements Encoder<BridgeRecord> {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Override
    public void encode(BridgeRecord letter, OutputStream out) throws IOException {
        ObjectNode line = JSON.createObjectNode();
        line.put("timestamp", letter.timestamp);
        ObjectNode headers = line.putObject("headers");
        for (Map.Entry<String, String> header : new TreeMap<>(letter.headers).entrySet()) {
            headers.put(header.getKey(), header.getValue());
        }
        try {
            line.put("payload", StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(letter.payload)).toString());
        } catch (CharacterCodingException notText) {
            line.put("payload_base64", Base64.getEncoder().encodeToString(letter.payload));
        }
        out.write(JSON.writeValueAsBytes(line));
        out.write('\n');
    }
}
