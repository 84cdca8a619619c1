"""``python -m chalicelib``: the engine's command line.

    python -m chalicelib migrate                 apply the migrations to DATABASE_URL
    python -m chalicelib keys create NAME        a new API key for client NAME (shown once)
    python -m chalicelib keys list               every key: prefix, client, created, revoked
    python -m chalicelib keys revoke PREFIX      revoke a key by its prefix
    python -m chalicelib queues                  create or update the queue and its DLQ

``make migrate`` and ``make key NAME=...`` call it.
"""

import argparse
import logging
import sys

from chalicelib import startup
from chalicelib.access import keys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chalicelib",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply the migrations to DATABASE_URL")
    key_commands = commands.add_parser("keys", help="API keys").add_subparsers(
        dest="keys_command", required=True
    )
    key_commands.add_parser("create", help="a new key for a client (shown once)").add_argument(
        "name"
    )
    key_commands.add_parser("list", help="every key: prefix, client, created, revoked")
    key_commands.add_parser("revoke", help="revoke a key by its prefix").add_argument("prefix")
    commands.add_parser("queues", help="create or update the orders queue and its DLQ")
    return parser


def _migrate() -> int:
    applied = startup.migrate()
    print("applied:", ", ".join(applied) or "nothing (up to date)")
    return 0


def _keys(args: argparse.Namespace) -> int:
    startup.migrate()  # the key tables may not exist yet
    if args.keys_command == "create":
        new = keys.create(args.name)
        print(f"client {args.name} ({new.client_id}), key {new.prefix}; shown once, keep it:")
        print(new.key)
    elif args.keys_command == "list":
        for k in keys.list_keys():
            revoked = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
            print(f"{k.prefix}  {k.client:<20} {k.created_at:%Y-%m-%d %H:%M}  {revoked}")
    elif keys.revoke(args.prefix):
        print(f"revoked {args.prefix}")
    else:
        print(f"no active key {args.prefix}", file=sys.stderr)
        return 1
    return 0


def _queues() -> int:
    urls = startup.ensure_queues()
    print(f"queue {urls.queue}\ndlq   {urls.dlq}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level="INFO", format="%(message)s")
    try:
        if args.command == "migrate":
            return _migrate()
        if args.command == "keys":
            return _keys(args)
        return _queues()
    except startup.StartupError as e:
        print(e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
