"""The Python worker's echo segment for the round-trip benchmark (TransportRoundTrip with -p worker=python):
each input comes back as it is, so a round trip through it measures the transport and the runtime."""


class Echo:
    def process(self, message):
        return [message]
