package org.flinkbridge.pipeline;

import java.io.Serial;

/**
 * A pipeline file that cannot be read or is not valid. The message is one line that names the file and,
 * where there is one, the place in it: {@code <file>: <path> (line L, column C): expected ... but found ...}.
 */
public final class PipelineException extends RuntimeException {

    @Serial
    private static final long serialVersionUID = 1L;

    public PipelineException(String message) {
        super(message);
    }

    public PipelineException(String message, Throwable cause) {
        super(message, cause);
    }
}
