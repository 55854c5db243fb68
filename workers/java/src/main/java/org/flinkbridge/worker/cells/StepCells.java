package org.flinkbridge.worker.cells;

import org.flinkbridge.proto.control.CellKind;
import org.flinkbridge.worker.sdk.MapCell;
import org.flinkbridge.worker.sdk.ValueCell;

import java.time.Duration;
import java.util.HashSet;
import java.util.Objects;
import java.util.Set;

/**
 * Where one step instance declares its cells, while it opens: each name once, each a value or a map with an
 * optional TTL, numbered by the session's {@link CellDeclarations}.
 */
public final class StepCells {

    private final SessionCells cells;
    private final int stepIndex;
    private final String step;
    private final Set<String> names = new HashSet<>();
    private boolean opened;

    /** @param stepIndex the step's place in its segment, from 0 */
    public StepCells(SessionCells cells, int stepIndex, String step) {
        this.cells = cells;
        this.stepIndex = stepIndex;
        this.step = step;
    }

    public ValueCell valueCell(String name, Duration ttl) {
        return new ValueCellHandle(cells, declare(name, CellKind.CELL_KIND_VALUE, ttl));
    }

    public MapCell mapCell(String name, Duration ttl) {
        return new MapCellHandle(cells, declare(name, CellKind.CELL_KIND_MAP, ttl));
    }

    /** Whether the step's session is keyed ({@link SessionCells#keyed}). */
    public boolean keyed() {
        return cells.keyed();
    }

    /** The step has opened: it declares no more cells. */
    public void opened() {
        opened = true;
    }

    /** @param ttl null: none */
    private int declare(String name, CellKind kind, Duration ttl) {
        Objects.requireNonNull(name, "a cell's name");
        if (opened) {
            throw new IllegalStateException("step '" + step + "': cell '" + name + "' is declared after the step "
                    + "opened: a step declares its cells in open()");
        }
        if (name.isEmpty()) {
            throw new IllegalArgumentException("step '" + step + "': a cell needs a name");
        }
        if (!names.add(name)) {
            throw new IllegalArgumentException("step '" + step + "' declares cell '" + name + "' twice: a cell's "
                    + "name is unique within its step");
        }
        return cells.declarations().declare(stepIndex, step, name, kind, ttlMillis(name, ttl));
    }

    private long ttlMillis(String name, Duration ttl) {
        if (ttl == null) {
            return 0;
        }
        if (ttl.compareTo(Duration.ofMillis(1)) < 0) {
            throw new IllegalArgumentException("step '" + step + "': cell '" + name + "' has a TTL of " + ttl
                    + "; a TTL is at least 1 ms");
        }
        try {
            return ttl.toMillis();
        } catch (ArithmeticException e) {
            return Long.MAX_VALUE;
        }
    }
}
