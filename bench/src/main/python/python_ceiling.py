"""The Python ceiling of the end-to-end benchmark: the Python worker's built-in append_field step called in a
plain Python loop over events shaped like the job's generated ones, with no Flink and no transport. Prints
records per second. Usage: python3 python_ceiling.py RECORDS (with the worker runtime on PYTHONPATH)."""
import json
import sys
import time

from flink_bridge.sdk import Message
from flink_bridge.segments import SegmentChain

STEP = [("add_processed", "append_field", json.dumps({"field": "processed", "value": True}))]


def main():
    count = int(sys.argv[1])
    events = [Message(f'{{"id":{i},"key":"key-{i % 100}","value":{(i * 7919) % 1000000}}}'.encode(), {}, i)
              for i in range(count)]
    step = SegmentChain(STEP)
    outputs = []
    started = time.perf_counter()
    for event in events:
        step.process(event, outputs.append)
    elapsed = time.perf_counter() - started
    if len(outputs) != count:
        sys.exit(f"{len(outputs)} outputs for {count} events")
    print(f"{count / elapsed:.0f}")


if __name__ == "__main__":
    main()
