"""Shared fixtures: one boto3 session for the whole run (created after moto is imported, so its
botocore models are parsed once), and a fresh moto world per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SECURITY_TOKEN", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")

import boto3
import moto
import pytest

SESSION = boto3.session.Session(region_name="us-east-1")
TABLE_NAME = "cache-warming-test"
SCHEDULE_GROUP = "cache-warming-test"


@pytest.fixture
def aws() -> Iterator[boto3.session.Session]:
    """A fresh moto account for one test, reached through the shared session."""
    with moto.mock_aws():
        yield SESSION
