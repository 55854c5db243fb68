"""Steps that fail with a message of over 100 KiB, much of it not ASCII: on a record, on restore. The Python worker's
tests (test_errors) and the Rust worker's hosted segments (workers/rust/src/python.rs) both run them."""

LONG = "told to fail with a long message:" + " ünïcödé €" * 8_000 + " (its end)"


class FailsOnRecord:
    def process(self, message):
        raise RuntimeError(LONG)


class FailsOnRestore:
    def process(self, message):
        return [message]

    def snapshot(self):
        return b""

    def restore(self, state):
        raise RuntimeError(LONG)
