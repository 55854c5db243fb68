package org.flinkbridge.bench;

import java.io.Serializable;

/**
 * Which key each record of the state backends' benchmark changes, and in which round: round 0 (the build) changes
 * every key once, in order; each later round changes the next 1% of the keys (at least one), so that the keys of one
 * round are distinct and every key changes once in 100 rounds. Records are numbered from 0 across the rounds.
 *
 * @param keys the number of keys, at least 1
 */
record KeyDraw(long keys) implements Serializable {

    /** The share of the keys that one round after the build changes, in percent. */
    static final long PERCENT_PER_ROUND = 1;

    KeyDraw {
        if (keys < 1) {
            throw new IllegalArgumentException("the state backends' benchmark needs at least one key, not " + keys);
        }
    }

    /** Keys changed by each round after the build. */
    long perRound() {
        return Math.max(1, keys * PERCENT_PER_ROUND / 100);
    }

    /** Records in the build and {@code rounds} rounds after it. */
    long records(int rounds) {
        return keys + rounds * perRound();
    }

    /** The round record {@code index} belongs to: 0 for the build. */
    int round(long index) {
        return index < keys ? 0 : (int) ((index - keys) / perRound() + 1);
    }

    /** The number of the first record of {@code round}. */
    long firstRecord(int round) {
        return round == 0 ? 0 : keys + (round - 1) * perRound();
    }

    /** Records in {@code round}. */
    long recordsIn(int round) {
        return round == 0 ? keys : perRound();
    }

    /** The key record {@code index} changes, from 0 to {@code keys - 1}. */
    long key(long index) {
        if (index < keys) {
            return index;
        }
        long sinceBuild = index - keys;
        return sinceBuild % keys;
    }

    /** The number of the record of rounds 0 to {@code round} that changed {@code key} last. */
    long lastChange(long key, int round) {
        int last = lastRound(key, round);
        return last == 0 ? key : firstRecord(last) + Math.floorMod(key - (last - 1) * perRound() % keys, keys);
    }

    /** The last of rounds 0 to {@code round} that changed {@code key}. */
    int lastRound(long key, int round) {
        // Round r > 0 changes the keys (r - 1) * perRound .. r * perRound - 1, modulo the number of keys.
        for (int r = round; r > 0; r--) {
            long first = (r - 1) * perRound() % keys;
            if (Math.floorMod(key - first, keys) < perRound()) {
                return r;
            }
        }
        return 0;
    }
}
