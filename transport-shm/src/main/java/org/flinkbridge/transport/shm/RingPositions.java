package org.flinkbridge.transport.shm;

/**
 * The rule every pair of positions read from a ring's control block must meet before either indexes the
 * ring: both on a frame boundary, and the producer ahead of the consumer by 0 to the capacity. A peer (or
 * whoever wrote the file) may have put anything there; a position that breaks the rule would read or write
 * outside the ring.
 */
final class RingPositions {

    private RingPositions() {}

    static void check(String ring, long producer, long consumer, int capacity) throws RingException {
        String fault;
        if (consumer % RingLayout.FRAME_ALIGNMENT != 0) {
            fault = "consumer position " + consumer + " is not 8-byte aligned";
        } else if (producer % RingLayout.FRAME_ALIGNMENT != 0) {
            fault = "producer position " + producer + " is not 8-byte aligned";
        } else if (producer < consumer) {
            fault = "producer position " + producer + " is behind consumer position " + consumer;
        } else if (producer - consumer > capacity) {
            fault = "producer position " + producer + " is more than the capacity ahead of the consumer";
        } else {
            return;
        }
        throw new RingException(ring + ": corrupt positions: " + fault + " (producer at " + producer
                + ", consumer at " + consumer + ", capacity " + capacity + ")");
    }
}
