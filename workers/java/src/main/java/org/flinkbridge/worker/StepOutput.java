package org.flinkbridge.worker;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * What steps print on {@code System.out} and {@code System.err}, once the worker has printed its listening line: each
 * line goes into the worker's log (standard error), named by the session whose step printed it (docs/protocol.md,
 * "Launch and lifetime"). Standard output then carries nothing more, so a step's prints cannot fill a pipe that a
 * launcher reading only the listening line leaves unread.
 */
final class StepOutput extends OutputStream {

    private static final Logger LOG = LoggerFactory.getLogger(StepOutput.class);
    /** The session a thread's steps are serving; lines printed outside any session are logged without a name. */
    private static final ScopedValue<String> SESSION = ScopedValue.newInstance();

    /** The line each thread is printing, until its end of line. */
    private final ThreadLocal<ByteArrayOutputStream> lines = ThreadLocal.withInitial(ByteArrayOutputStream::new);

    private StepOutput() {}

    /** Sends {@code System.out} and {@code System.err} into the log from now on. */
    static void install() {
        // The log's appender keeps the standard error it was made with: these lines reach the real one.
        PrintStream steps = new PrintStream(new StepOutput(), true, StandardCharsets.UTF_8);
        System.setOut(steps);
        System.setErr(steps);
    }

    /** For code that calls steps, {@code naming(session).call(...)}: what they print is named by {@code session}. */
    static ScopedValue.Carrier naming(String session) {
        return ScopedValue.where(SESSION, session);
    }

    @Override
    public void write(int b) {
        write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] bytes, int offset, int length) {
        ByteArrayOutputStream line = lines.get();
        for (int i = offset; i < offset + length; i++) {
            if (bytes[i] != '\n') {
                line.write(bytes[i]);
                continue;
            }
            String text = line.toString(StandardCharsets.UTF_8);
            line.reset();
            if (SESSION.isBound()) {
                LOG.info("{}: {}", SESSION.get(), text);
            } else {
                LOG.info("{}", text);
            }
        }
    }
}
