package org.flinkbridge.kafka;

/**
 * A transaction a writer has flushed and left open for the committer (the sink's committable): its id, and the
 * producer id and epoch with which another producer can resume and commit it.
 */
record KafkaTransaction(TransactionalId id, long producerId, short epoch) {
}
