"""A per-key running count whose outputs name the build that counted: the segment a planned upgrade replaces
(README, "Upgrading a worker without a restart"). Deploy a new build by changing BUILD (or anything else) in
place, then run `./flink-bridge cluster upgrade-worker`: the counts go on from the state, and the outputs name
the new build from then on. Its state is the pickled instance."""
import json

BUILD = "v1"


class Count:
    def __init__(self, **config):
        self.counts = {}

    def process(self, message):
        key = json.loads(message.payload)["key"]
        self.counts[key] = self.counts.get(key, 0) + 1
        answer = {"key": key, "count": self.counts[key], "build": BUILD}
        return [message.with_payload(json.dumps(answer).encode())]
