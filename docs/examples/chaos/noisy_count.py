"""A per-key running count that is deliberately not deterministic: each output carries a random number, so a
replay never gives the outputs the first run gave. `./flink-bridge chaos --nondeterministic` runs it to show that
recovery in place then takes the failover path (the job restores from its checkpoint) and the result is still
exactly once. Its state is the pickled instance."""
import collections
import json
import random


class Count:
    def __init__(self, **config):
        self.counts = collections.Counter()

    def process(self, message):
        key = json.loads(message.payload)["key"]
        self.counts[key] += 1
        noisy = {"key": key, "count": self.counts[key], "noise": random.random()}
        return [message.with_payload(json.dumps(noisy).encode())]
