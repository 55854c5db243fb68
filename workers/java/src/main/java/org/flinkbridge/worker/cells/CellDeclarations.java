package org.flinkbridge.worker.cells;

import org.flinkbridge.proto.control.CellDeclaration;
import org.flinkbridge.proto.control.CellKind;

import java.util.ArrayList;
import java.util.List;

/**
 * The cells a session's steps declare, numbered in step order then declaration order: a cell's index is its id
 * on the wire. The first instance of the segment, built when the session opens, declares them; every later
 * instance (one per key group) must declare the same, and gets the same ids.
 */
public final class CellDeclarations {

    /** One declared cell: its step (by place and name), its name, kind and TTL in ms (0: none). */
    public record Declared(int stepIndex, String step, String name, CellKind kind, long ttlMillis) {

        /** How messages name it. */
        String describe() {
            return "step '" + step + "': cell '" + name + "'";
        }
    }

    private final List<Declared> cells = new ArrayList<>();
    private boolean sealed;

    /**
     * The id of a cell a step declares: a new one while the first instance opens, afterwards the one that instance
     * declared under that name.
     *
     * @throws IllegalStateException when a later instance declares a cell the first did not, or differently
     */
    int declare(int stepIndex, String step, String name, CellKind kind, long ttlMillis) {
        Declared wanted = new Declared(stepIndex, step, name, kind, ttlMillis);
        for (int id = 0; id < cells.size(); id++) {
            Declared known = cells.get(id);
            if (known.stepIndex() == stepIndex && known.name().equals(name)) {
                if (!known.equals(wanted)) {
                    throw new IllegalStateException(wanted.describe() + " is declared as " + describe(wanted)
                            + " by this instance but as " + describe(known) + " by the step's first: a step "
                            + "declares the same cells in every instance");
                }
                return id;
            }
        }
        if (sealed) {
            throw new IllegalStateException(wanted.describe() + " is declared by this instance but not by the step's "
                    + "first: a step declares the same cells in every instance");
        }
        cells.add(wanted);
        return cells.size() - 1;
    }

    private static String describe(Declared cell) {
        return (cell.kind() == CellKind.CELL_KIND_MAP ? "a map" : "a value")
                + (cell.ttlMillis() > 0 ? " with a TTL of " + cell.ttlMillis() + " ms" : "");
    }

    /** The first instance is built: from now on, instances only find the cells it declared. */
    public void seal() {
        sealed = true;
    }

    public int size() {
        return cells.size();
    }

    public Declared get(int id) {
        return cells.get(id);
    }

    public List<Declared> all() {
        return List.copyOf(cells);
    }

    /** The list OpenSessionResponse.cells carries. */
    public List<CellDeclaration> toProto() {
        List<CellDeclaration> declarations = new ArrayList<>(cells.size());
        for (Declared cell : cells) {
            declarations.add(CellDeclaration.newBuilder().setStep(cell.step()).setName(cell.name())
                    .setKind(cell.kind()).setTtlMs(cell.ttlMillis()).build());
        }
        return declarations;
    }
}
