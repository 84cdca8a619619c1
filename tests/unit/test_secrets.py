"""Secrets from Secrets Manager (moto): read once per container, plain or RDS-style JSON."""

import json

import boto3
import pytest
from moto import mock_aws

from chalicelib import config
from chalicelib.backends import secrets


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # boto3 would send the calls to the SQS server
    with mock_aws():
        secrets._read.cache_clear()
        yield boto3.client("secretsmanager", region_name="us-east-1")
    secrets._read.cache_clear()


def with_settings(monkeypatch, **values):
    settings = config.get_settings().updated(**values)
    monkeypatch.setattr(secrets, "get_settings", lambda: settings)


def test_the_passwords_are_read_once_and_kept(aws, monkeypatch):
    db = aws.create_secret(Name="db", SecretString=json.dumps({"username": "u", "password": "p1"}))
    token = aws.create_secret(Name="redis", SecretString="t0ken")
    with_settings(monkeypatch, database_password_secret=db["ARN"], redis_auth_secret=token["ARN"])
    assert secrets.database_password() == "p1"
    assert secrets.redis_password() == "t0ken"
    aws.put_secret_value(SecretId=db["ARN"], SecretString=json.dumps({"password": "p2"}))
    assert secrets.database_password() == "p1", "one read per container"


def test_no_secret_configured_means_none_and_no_call(monkeypatch):
    with_settings(monkeypatch, database_password_secret=None, redis_auth_secret=None)
    monkeypatch.setattr(secrets.boto3, "client", None)  # any call would fail
    assert secrets.database_password() is None and secrets.redis_password() is None
