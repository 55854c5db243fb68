# ``python3 workers/python/``: the Python worker, with this folder on the path (see flink_bridge/main.py).
from flink_bridge.main import main

main()
