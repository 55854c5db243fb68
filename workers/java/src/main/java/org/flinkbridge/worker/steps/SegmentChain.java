package org.flinkbridge.worker.steps;

import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.TimeDomain;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.util.List;

/**
 * The steps of one pipeline segment run as one: outputs of step k are inputs of step k+1. A watermark
 * passes through the chain in order, so whatever step k emits on it reaches step k+1 before step k+1 sees
 * the watermark itself.
 */
public final class SegmentChain implements Step {

    private final Step[] steps;
    private final Link[] links;

    public SegmentChain(List<Step> steps) {
        if (steps.isEmpty()) {
            throw new IllegalArgumentException("a segment needs at least one step");
        }
        this.steps = steps.toArray(Step[]::new);
        this.links = new Link[this.steps.length];
        for (int i = 0; i < links.length; i++) {
            links[i] = new Link(i);
        }
    }

    /** @throws StepFailure naming the step that failed on the record or on an output of an earlier step */
    @Override
    public void process(Record input, Emitter output) {
        links[0].downstream = output;
        try {
            steps[0].process(input, links[0].next());
        } catch (StepFailure e) {
            throw e;
        } catch (Exception e) {
            throw new StepFailure(0, e);
        }
    }

    @Override
    public void onWatermark(long timestamp, Emitter output) throws Exception {
        links[0].downstream = output;
        for (int i = 0; i < steps.length; i++) {
            steps[i].onWatermark(timestamp, links[i].next());
        }
    }

    /**
     * A timer of step {@code step} (its place in the segment) fires: its {@link Step#onTimer}, whose outputs go
     * through the steps after it. Its own exception comes out as it is (a firing goes to no dead letters); a later
     * step's failure on one of its outputs as a {@link StepFailure}.
     */
    public void onTimer(int step, long timestamp, TimeDomain domain, Emitter output) throws Exception {
        links[0].downstream = output;
        steps[step].onTimer(timestamp, domain, links[step].next());
    }

    /** How many steps the segment has. */
    public int size() {
        return steps.length;
    }

    /** The steps' states, each prefixed by its length, behind a count of steps; empty when no step holds any. */
    @Override
    public byte[] snapshotState() throws Exception {
        byte[][] states = new byte[steps.length][];
        boolean empty = true;
        for (int i = 0; i < steps.length; i++) {
            states[i] = steps[i].snapshotState();
            empty &= states[i].length == 0;
        }
        if (empty) {
            return new byte[0];
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeInt(steps.length);
        for (byte[] state : states) {
            out.writeInt(state.length);
            out.write(state);
        }
        out.flush();
        return bytes.toByteArray();
    }

    @Override
    public void restoreState(byte[] state) throws Exception {
        if (state.length == 0) {
            return;
        }
        DataInputStream in = new DataInputStream(new java.io.ByteArrayInputStream(state));
        try {
            int count = in.readInt();
            if (count != steps.length) {
                throw new IOException("it holds " + count + " step states, but the segment has " + steps.length
                        + " steps");
            }
            for (Step step : steps) {
                int length = in.readInt();
                if (length < 0 || length > in.available()) {
                    throw new IOException("a step state of " + length + " bytes, with " + in.available() + " left");
                }
                step.restoreState(in.readNBytes(length));
            }
            if (in.available() > 0) {
                throw new IOException(in.available() + " bytes after the last step state");
            }
        } catch (EOFException e) {
            throw new IOException("cannot restore the segment's state: it ends early", e);
        } catch (IOException e) {
            throw new IOException("cannot restore the segment's state: " + e.getMessage(), e);
        }
    }

    @Override
    public void onCheckpointCompleted(long checkpointId) throws Exception {
        for (Step step : steps) {
            step.onCheckpointCompleted(checkpointId);
        }
    }

    @Override
    public void onCheckpointAborted(long checkpointId) throws Exception {
        for (Step step : steps) {
            step.onCheckpointAborted(checkpointId);
        }
    }

    @Override
    public void close() throws Exception {
        Exception first = null;
        for (Step step : steps) {
            try {
                step.close();
            } catch (Exception e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    /**
     * Where step i's outputs go: into step i+1, or out of the chain after the last step. One per step,
     * made once, so a record passes through the chain without allocating emitters.
     */
    private final class Link implements Emitter {
        private final int index;
        Emitter downstream;

        Link(int index) {
            this.index = index;
        }

        Emitter next() {
            if (index + 1 == steps.length) {
                return links[0].downstream;
            }
            return this;
        }

        @Override
        public void emit(Record output) {
            try {
                steps[index + 1].process(output, links[index + 1].next());
            } catch (StepFailure e) {
                throw e;
            } catch (Exception e) {
                throw new StepFailure(index + 1, e);
            }
        }
    }

    /**
     * A step's failure on a record, carried through the emitters of the steps before it: which step failed
     * decides whether the record goes to the dead letters or fails the session.
     */
    public static final class StepFailure extends RuntimeException {
        private final int step;

        StepFailure(int step, Exception cause) {
            super(cause.getMessage(), cause);
            this.step = step;
        }

        /** The exception of the step that failed, where {@code e} is a StepFailure; else {@code e}. */
        public static Exception stepException(Exception e) {
            return e instanceof StepFailure failure ? (Exception) failure.getCause() : e;
        }

        /** The failed step's place in the segment, from 0. */
        public int step() {
            return step;
        }
    }
}
