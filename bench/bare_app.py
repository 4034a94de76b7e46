"""The cold-start reference: a bare Chalice app that imports boto3, and nothing else."""

import boto3
from chalice.app import Chalice

app = Chalice(app_name="bare")


@app.route("/")
def index() -> dict[str, str]:
    return {"boto3": boto3.__version__}
