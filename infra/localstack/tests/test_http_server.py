"""LocalStack's HTTP server reading request bodies.

The extension's `patches.orderflow_skip_form_parsing` tells twisted not to parse a POST body as a
form (it did so for every POST, through the `email` package), for speed only: LocalStack's gateway
reads each body from the WSGI input and parses it itself. These tests pin that a URL-encoded body,
the AWS query protocol's, still reaches the gateway whole; they pass the same against twisted's own
parse (`ORDERFLOW_SKIP_NO_FORM_PARSING=1 cargo xtask cloud up`)."""

from conftest import unique


def test_a_url_encoded_body_reaches_the_gateway_whole(aws):
    # STS speaks the query protocol: the action and every parameter are in the URL-encoded body,
    # and the answer echoes the session name.
    session = unique("form-body")
    role = "arn:aws:iam::000000000000:role/orderflow-form-test"
    assumed = aws("sts").assume_role(RoleArn=role, RoleSessionName=session)
    assert assumed["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::000000000000:assumed-role/orderflow-form-test/{session}"
    )


def test_a_url_encoded_body_with_many_parameters(aws):
    # CloudFormation, also the query protocol: a filter of several values, each its own field.
    statuses = ["CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE"]
    listed = aws("cloudformation").list_stacks(StackStatusFilter=statuses)["StackSummaries"]
    assert all(stack["StackStatus"] in statuses for stack in listed), listed
