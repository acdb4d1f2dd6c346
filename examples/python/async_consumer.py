#!/usr/bin/python3
"""async_consumer.py — follow a queue's result stream with drover.aio.

    drover up &
    PYTHONPATH=clients/python python3 examples/python/async_consumer.py \
        [QUEUE] [CONSUMER] [--demo]

Follows QUEUE (default 'example') as CONSUMER (default 'example-consumer'),
printing each result as it finishes and acknowledging every 100 (and at
the end): stop it and start it again and it resumes after the last ack,
from this or any other machine. With --demo it also submits 20 echo jobs
itself, and stops once it has seen them.
"""

import asyncio
import sys

import drover
import drover.aio


async def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    queue = args[0] if args else "example"
    consumer = args[1] if len(args) > 1 else "example-consumer"
    demo = "--demo" in sys.argv
    async with drover.aio.Client() as c:
        stream = await c.follow(queue, consumer,
                                start="latest" if demo else None)
        print(f"following {queue} as {consumer} (acked up to {stream.acked})")
        if demo:
            jobs = await c.submit_many("echo", [f"demo {i}".encode()
                                                for i in range(20)],
                                       queue=queue)
            await asyncio.gather(*[j.result(30) for j in jobs])
        seen = 0
        try:
            async for r in stream:
                what = bytes(r.payload[:40]) if r.ok else r.error
                print(f"seq {r.seq}: job {r.job} {r.state}: {what!r}")
                seen += 1
                if seen % 100 == 0:
                    await stream.ack(r)
                if demo and seen == 20:
                    break
        finally:
            if stream.last_seq:
                acked = await stream.ack(wait=True)
                print(f"acknowledged up to {acked}")
            await stream.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except drover.DroverError as e:
        sys.exit(f"async_consumer: {e}")
