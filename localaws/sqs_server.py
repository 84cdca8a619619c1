"""``python -m localaws.sqs_server PORT``: moto's SQS on 127.0.0.1:PORT, in a process of its own
(SQS is a service of its own in AWS, and moto's server would otherwise share the gateway's
interpreter). It prints ``ready`` once it listens and runs until its standard input closes: the
runtime closes it to stop the server, and a runtime killed outright closes it too, so no server
outlives it.
"""

import sys

from moto.server import ThreadedMotoServer


def main() -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
    server.start()
    print("ready", flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
