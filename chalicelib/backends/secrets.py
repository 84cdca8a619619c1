"""The database password and the Redis AUTH token, from AWS Secrets Manager.

In AWS, ``DATABASE_PASSWORD_SECRET`` and ``REDIS_AUTH_SECRET`` name the secrets (ARNs) and
``DATABASE_URL``/``REDIS_URL`` carry no password: nothing secret sits in the functions'
environment. Each secret is read once per container (the first connection) and kept for
its life; a rotated secret reaches new containers. Unset (locally), the URLs are used as given.

A secret's value is the password itself, or JSON with a ``password`` key (what RDS and
``aws secretsmanager create-secret --generate-secret-string`` store).
"""

import json
from functools import lru_cache

import boto3

from chalicelib.config import get_settings


@lru_cache
def _read(secret_id: str) -> str:
    client = boto3.client("secretsmanager", region_name=get_settings().queue.aws_region)
    value = client.get_secret_value(SecretId=secret_id)["SecretString"]
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed["password"] if isinstance(parsed, dict) else value


def database_password() -> str | None:
    secret_id = get_settings().storage.database_password_secret
    return _read(secret_id) if secret_id else None


def redis_password() -> str | None:
    secret_id = get_settings().storage.redis_auth_secret
    return _read(secret_id) if secret_id else None
