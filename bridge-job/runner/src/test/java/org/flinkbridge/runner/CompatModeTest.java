package org.flinkbridge.runner;

import com.google.protobuf.ByteString;
import io.grpc.Server;
import io.grpc.stub.StreamObserver;
import org.flinkbridge.proto.compat.FlinkWorkerServiceGrpc;
import org.flinkbridge.proto.compat.Message;
import org.flinkbridge.proto.compat.ProcessMessageRequest;
import org.flinkbridge.proto.compat.ProcessMessageResponse;
import org.flinkbridge.proto.compat.ProcessWatermarkRequest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The bridge in compat mode against a peer that speaks only the prototype's unary service. */
class CompatModeTest {

    /** A prototype-style worker: upper-cases each payload and tags it with the segment id. */
    static final class PrototypeWorker extends FlinkWorkerServiceGrpc.FlinkWorkerServiceImplBase {
        final AtomicInteger messages = new AtomicInteger();
        final AtomicInteger watermarks = new AtomicInteger();

        @Override
        public void processMessage(ProcessMessageRequest request, StreamObserver<ProcessMessageResponse> reply) {
            messages.incrementAndGet();
            Message in = request.getMessage();
            String upper = in.getPayload().toString(StandardCharsets.UTF_8).toUpperCase(Locale.ROOT);
            reply.onNext(ProcessMessageResponse.newBuilder().addMessages(Message.newBuilder()
                    .setPayload(ByteString.copyFromUtf8(upper))
                    .putAllHeaders(in.getHeadersMap())
                    .putHeaders("segment", Integer.toString(request.getSegmentId()))
                    .setTimestamp(in.getTimestamp())).build());
            reply.onCompleted();
        }

        @Override
        public void processWatermark(ProcessWatermarkRequest request, StreamObserver<ProcessMessageResponse> reply) {
            watermarks.incrementAndGet();
            reply.onNext(ProcessMessageResponse.getDefaultInstance());
            reply.onCompleted();
        }
    }

    @Test
    void prototypeWorkerRunsUnchanged(@TempDir Path dir) throws Exception {
        PrototypeWorker prototype = new PrototypeWorker();
        Server server = TestPeers.start(prototype);
        try {
            Path pipeline = TestPipelines.write(dir, "compat", """
                    name: compat
                    sources:
                      events: {type: generator, count: 500}
                    steps:
                      - {step_name: shout, type: prototype.Shout}
                    sinks:
                      files: {type: file, path: unused}
                    bridge: {transport: grpc, grpc_mode: compat}
                    """);
            Path out = dir.resolve("out");

            String summary = LocalRunner.run(new String[] {pipeline.toString(), "--output", out.toString(),
                    "--worker-address", "127.0.0.1:" + server.getPort()});

            List<String> lines = TestPipelines.outputLines(out);
            assertEquals(500, lines.size());
            Set<String> distinct = new HashSet<>(lines);
            assertEquals(500, distinct.size());
            for (String line : lines) {
                assertTrue(line.startsWith("{\"ID\":") && line.contains("\"KEY\":\"KEY-"), line);
            }
            assertEquals(500, prototype.messages.get());
            assertTrue(prototype.watermarks.get() >= 1, "the end of input reaches the worker as a watermark");
            assertTrue(summary.contains("read=500 sent=500 received=500 written=500"), summary);
        } finally {
            TestPeers.stop(server);
        }
    }
}
