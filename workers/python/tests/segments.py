"""Segments in the prototype's shape, for tests."""
from flink_bridge.sdk import EVENT_TIME, Message, current_key, map_cell, timers, value_cell


class Echo:
    def process(self, message):
        if message.payload == b"boom":
            raise ValueError("told to fail")
        return [message]


class SplitsLines:
    """One output per line of the payload."""

    def process(self, message):
        return [Message(line, message.headers, message.timestamp) for line in message.payload.split(b"\n")]


class Refused(Exception):
    """An exception class of a module's own."""


class Refuses:
    """Refuses a record whose payload starts with "refuse", with the payload as the message, and every watermark."""

    def process(self, message):
        if message.payload.startswith(b"refuse"):
            raise Refused(message.payload.decode())
        return [message]

    def watermark(self, timestamp):
        raise Refused("no watermarks")


class LoneSurrogateHeader:
    """For a record whose payload is "bad", an output and then one whose header UTF-8 cannot encode."""

    def process(self, message):
        if message.payload != b"bad":
            return [message]
        return [message, Message(b"x", {"h": "\ud800"}, 0)]


class Counter:
    """Counts records; its state is the pickled instance."""

    def __init__(self, start=0):
        self.seen = start

    def process(self, message):
        self.seen += 1
        return [Message(str(self.seen).encode(), {}, message.timestamp)]

    def watermark(self, timestamp):
        return [Message(b"watermark %d" % timestamp, {}, timestamp)]


class ReturnsText:
    def process(self, message):
        return [Message("text", {}, 0)]


class ReturnsNumberHeader:
    def process(self, message):
        return [Message(b"x", {"n": 1}, 0)]


class ReturnsOneMessage:
    def process(self, message):
        return message


class HoldsALock:
    def __init__(self):
        import threading
        self.lock = threading.Lock()

    def process(self, message):
        return []


class SumPerWindow:
    """A window segment in the prototype's shape: accumulates payload lengths per window."""

    def __init__(self, label):
        self.label = label
        self.sums = {}

    def add(self, message, window_time, window_key):
        key = (window_time, window_key)
        self.sums[key] = self.sums.get(key, 0) + len(message.payload)

    def trigger(self, window_time, window_key):
        total = self.sums.pop((window_time, window_key))
        return [Message(f"{self.label} {window_key}@{window_time}: {total}".encode(), {}, window_time)]


# The worker's own segments (--segments tests.segments.SEGMENTS): entry N serves segment N's untyped steps.
SEGMENTS = [Echo, Counter]


class OwnState:
    """Keeps its state through snapshot()/restore(bytes): its state is never pickled."""

    def __init__(self):
        self.restored = None

    def process(self, message):
        return []

    def snapshot(self):
        return b"own state"

    def restore(self, state):
        self.restored = state


class OwnStateWindows(OwnState):
    """A window segment with its own state."""

    def add(self, message, window_time, window_key):
        pass

    def trigger(self, window_time, window_key):
        return []


UNPICKLED = []


class Unpickled:
    """Unpickling it records that it was unpickled: what a state crafted by whoever can write checkpoints could do."""

    def __reduce__(self):
        return UNPICKLED.append, ("unpickled",)


class CountsPerKey:
    """Keeps cells: counts its key's records (a value cell) and keeps each payload it saw (a map cell, with the
    given TTL); emits "key=count". A payload "refuse" is refused after the cells are written."""

    def __init__(self, ttl_ms=0):
        self.count = value_cell("count")
        self.payloads = map_cell("payloads", ttl_ms=ttl_ms)

    def process(self, message):
        count = int(self.count.get(b"0")) + 1
        self.count.set(str(count).encode())
        self.payloads.put(message.payload, str(count).encode())
        if message.payload == b"refuse":
            raise Refused("refused after writing its cells")
        return [Message(b"%s=%d" % (current_key(), count), {}, message.timestamp)]


class CountsPerKeyWithOwnState(CountsPerKey):
    """CountsPerKey that also counts every record it handled, as its own state (snapshot()/restore(bytes))."""

    def __init__(self):
        super().__init__()
        self.records = 0

    def process(self, message):
        self.records += 1
        return super().process(message) + [Message(b"records=%d" % self.records, {}, message.timestamp)]

    def snapshot(self):
        return b"%d" % self.records

    def restore(self, state):
        self.records = int(state)


class ReadsACellOnWatermarks:
    def __init__(self):
        self.last = value_cell("last")

    def process(self, message):
        self.last.set(message.payload)
        return []

    def watermark(self, timestamp):
        return [Message(self.last.get(b""), {}, timestamp)]


class BigEntries:
    """Puts ``count`` entries of ``size`` bytes in a map cell for each record."""

    def __init__(self, count, size):
        self.entries = map_cell("entries")
        self.count = count
        self.size = size

    def process(self, message):
        for index in range(self.count):
            self.entries.put(b"%d" % index, bytes([index % 256]) * self.size)
        return []


class ChangesThenRefuses:
    """Makes every kind of change to its cells, as the payload says, then refuses the record where it says so:
    "keep" sets the value and puts x; "refuse" sets the value, puts x and z, removes y, then fails; "refuse-clear"
    clears the value and the map, puts w, then fails; "show" emits what the cells hold."""

    def __init__(self):
        self.value = value_cell("value")
        self.entries = map_cell("entries")

    def process(self, message):
        payload = message.payload
        if payload == b"keep":
            self.value.set(b"kept")
            self.entries.put(b"x", b"kept")
        elif payload == b"refuse":
            self.value.set(b"changed")
            self.entries.put(b"x", b"changed")
            self.entries.remove(b"y")
            self.entries.put(b"z", b"3")
            raise Refused("refused after changing its cells")
        elif payload == b"refuse-clear":
            self.value.clear()
            self.entries.clear()
            self.entries.put(b"w", b"4")
            raise Refused("refused after clearing its cells")
        return [Message(b"%s %s" % (self.value.get(b"-"), b",".join(b"%s=%s" % item
                                                                    for item in sorted(self.entries.items()))),
                        {}, message.timestamp)]


class Alarms:
    """Sets timers of its key: a record sets an event-time timer at its timestamp + 10 (and, with a header "at", a
    processing-time timer then) and emits itself; "cancel" deletes the event-time timer at its timestamp + 10 instead;
    "boom" sets its timer, then fails. A firing emits "<key> <event|processing> <timestamp> after <last payload>"
    (the last payload: what its value cell holds); a firing after "again" sets an event-time timer 5 ms later first,
    and one after "fail" fails."""

    def __init__(self):
        self.timers = timers()
        self.last = value_cell("last")

    def process(self, message):
        if message.payload == b"cancel":
            self.timers.delete_event_time(message.timestamp + 10)
            return []
        self.timers.set_event_time(message.timestamp + 10)
        if "at" in message.headers:
            self.timers.set_processing_time(int(message.headers["at"]))
        if message.payload == b"boom":
            raise Refused("told to fail")
        self.last.set(message.payload)
        return [message]

    def on_timer(self, timestamp, domain):
        last = self.last.get(b"")
        if last == b"fail":
            raise Refused("the firing fails")
        if last == b"again":
            self.timers.set_event_time(timestamp + 5)
            self.last.set(b"again once")
        name = b"event" if domain == EVENT_TIME else b"processing"
        return [Message(b"%s %s %d after %s" % (current_key(), name, timestamp, last), {}, timestamp)]


class AlarmsWithoutCells:
    """Sets an event-time timer at each record's timestamp + 10 and keeps no cell; a firing emits "<key> <timestamp>"."""

    def __init__(self):
        self.timers = timers()

    def process(self, message):
        self.timers.set_event_time(message.timestamp + 10)
        return []

    def on_timer(self, timestamp, domain):
        return [Message(b"%s %d" % (current_key(), timestamp), {}, timestamp)]


class ManyTimers:
    """Sets ``count`` event-time timers for each record."""

    def __init__(self, count):
        self.timers = timers()
        self.count = count

    def process(self, message):
        for index in range(self.count):
            self.timers.set_event_time(2 ** 62 + index)
        return []

    def on_timer(self, timestamp, domain):
        return []


class TimersWithoutOnTimer:
    def __init__(self):
        self.timers = timers()

    def process(self, message):
        return []


class SetsATimerOnWatermarks(AlarmsWithoutCells):
    def watermark(self, timestamp):
        self.timers.set_event_time(timestamp)
        return []


class MarksWatermarks(AlarmsWithoutCells):
    """AlarmsWithoutCells that also emits "watermark <timestamp>" on each watermark; its state is the pickled
    instance (the timers handle pickled as its declaration)."""

    def watermark(self, timestamp):
        return [Message(b"watermark %d" % timestamp, {}, timestamp)]
