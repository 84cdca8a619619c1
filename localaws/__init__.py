"""The local runtime: the whole engine on one machine, no Docker and no AWS.

``python -m localaws`` (``make run``) imports ``app.py`` and plays the AWS parts
around it:

- ``gateway``     API Gateway: the REST routes through Chalice's own local gateway, the
                  WebSocket API (``websocket``) and its management API (``management``);
- ``poller``      Lambda's SQS event source mapping, and the schedule for ``@app.schedule``;
- ``services``    Postgres, Redis and SQS: the ones configured, or embedded ones it starts.

``python -m localaws.demo`` (``make demo``) is a client that submits orders and
watches them execute.
"""
