"""What the tests and the benchmarks share to run the engine and talk to it.

- ``runtime``  ``python -m localaws`` as a subprocess: start, wait for health, stop, kill;
- ``servers``  private Postgres, Redis and SQS (moto) servers on free ports, fresh databases;
- ``orders``   order bodies across pairs, ``FLOW`` and ``TERMINAL`` from ``OrderStatus``;
- ``http``     blocking HTTP requests and a bounded wait; ``client`` the asyncio HTTP and
               WebSocket client;
- ``verify``   what Postgres must show after a run: nothing lost, nothing twice.
"""
