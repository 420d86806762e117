"""`clients` official openai clients at once, in this process, each posting one file to a hushscribe API
server: prints the seconds from the first request sent to the last answer (and the wall clock at the first), as
JSON. bench/bench.py runs it in a process of its own, as real clients are, so that their work does not share the
server's GIL.

    python bench/api_clients.py URL FILE [--clients 64]
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from openai import OpenAI


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("file", type=Path)
    parser.add_argument("--clients", type=int, default=64)
    args = parser.parse_args()
    data = args.file.read_bytes()
    client = OpenAI(base_url=args.url, api_key="unused", max_retries=0, timeout=900)

    def one(_) -> str:
        return client.audio.transcriptions.create(model="whisper-1", file=(args.file.name, data), language="en").text

    with ThreadPoolExecutor(args.clients) as pool:
        pool.submit(one, 0).result()  # the connection pool and the client's imports warm
        wall, start = time.time(), time.perf_counter()
        texts = list(pool.map(one, range(args.clients)))
        seconds = time.perf_counter() - start
    print(json.dumps({"seconds": round(seconds, 3), "answered": sum(bool(t) for t in texts), "start": wall}))


if __name__ == "__main__":
    main()
