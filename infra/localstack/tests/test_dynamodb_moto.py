"""DynamoDB backed by moto: what orderflow uses, on tables created through CloudFormation."""

import json

import pytest
from botocore.exceptions import ClientError

from conftest import unique, wait_for

TEMPLATE = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Transform": "AWS::Serverless-2016-10-31",
    "Resources": {
        "Ledger": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            },
        },
        "Stock": {
            "Type": "AWS::Serverless::SimpleTable",
            "Properties": {"PrimaryKey": {"Name": "sku", "Type": "String"}},
        },
    },
    "Outputs": {
        "LedgerName": {"Value": {"Ref": "Ledger"}},
        "StockName": {"Value": {"Ref": "Stock"}},
    },
}


@pytest.fixture(scope="module")
def tables(aws):
    cfn = aws("cloudformation")
    stack = unique("orderflow-ddb")
    cfn.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(TEMPLATE),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )

    def done():
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        return status if not status.endswith("IN_PROGRESS") else None

    status = wait_for(done, 60, what="the stack")
    assert status == "CREATE_COMPLETE", status
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    }
    yield outputs["LedgerName"], outputs["StockName"]
    cfn.delete_stack(StackName=stack)


def error_code(err: ClientError) -> str:
    return err.response["Error"]["Code"]


def test_tables_exist_with_ttl(aws, tables):
    ledger, stock = tables
    ddb = aws("dynamodb")
    assert ddb.describe_table(TableName=ledger)["Table"]["TableStatus"] == "ACTIVE"
    assert ddb.describe_table(TableName=stock)["Table"]["KeySchema"] == [
        {"AttributeName": "sku", "KeyType": "HASH"}
    ]
    ttl = ddb.describe_time_to_live(TableName=ledger)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def test_conditional_put_is_idempotent(aws, tables):
    ledger, _ = tables
    ddb = aws("dynamodb")
    item = {"pk": {"S": "order#1"}, "sk": {"S": "payment"}, "amount_minor": {"N": "1250"}}
    ddb.put_item(TableName=ledger, Item=item, ConditionExpression="attribute_not_exists(pk)")
    with pytest.raises(ClientError) as err:
        ddb.put_item(TableName=ledger, Item=item, ConditionExpression="attribute_not_exists(pk)")
    assert error_code(err.value) == "ConditionalCheckFailedException"


def test_conditional_update(aws, tables):
    _, stock = tables
    ddb = aws("dynamodb")
    ddb.put_item(TableName=stock, Item={"sku": {"S": "sku-1"}, "available": {"N": "3"}})
    reserve = dict(
        TableName=stock,
        Key={"sku": {"S": "sku-1"}},
        UpdateExpression="SET available = available - :n",
        ConditionExpression="available >= :n",
        ExpressionAttributeValues={":n": {"N": "2"}},
        ReturnValues="UPDATED_NEW",
    )
    assert ddb.update_item(**reserve)["Attributes"]["available"] == {"N": "1"}
    with pytest.raises(ClientError) as err:
        ddb.update_item(**reserve)
    assert error_code(err.value) == "ConditionalCheckFailedException"


def test_transaction_commits_and_cancels_with_reasons(aws, tables):
    ledger, stock = tables
    ddb = aws("dynamodb")
    ddb.put_item(TableName=stock, Item={"sku": {"S": "sku-tx"}, "available": {"N": "1"}})

    def reserve(order: str):
        return [
            {
                "Put": {
                    "TableName": ledger,
                    "Item": {"pk": {"S": f"order#{order}"}, "sk": {"S": "reservation"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": stock,
                    "Key": {"sku": {"S": "sku-tx"}},
                    "UpdateExpression": "ADD available :minus",
                    "ConditionExpression": "available >= :one",
                    "ExpressionAttributeValues": {":minus": {"N": "-1"}, ":one": {"N": "1"}},
                }
            },
        ]

    ddb.transact_write_items(TransactItems=reserve("tx-1"))
    # Out of stock: the second item's condition fails, so nothing is written.
    with pytest.raises(ClientError) as err:
        ddb.transact_write_items(TransactItems=reserve("tx-2"))
    assert error_code(err.value) == "TransactionCanceledException"
    reasons = [r["Code"] for r in err.value.response["CancellationReasons"]]
    assert reasons == ["None", "ConditionalCheckFailed"]
    assert "Item" not in ddb.get_item(
        TableName=ledger, Key={"pk": {"S": "order#tx-2"}, "sk": {"S": "reservation"}}
    )


def test_query_by_partition_key(aws, tables):
    ledger, _ = tables
    ddb = aws("dynamodb")
    for sk in ("a", "b", "c"):
        ddb.put_item(TableName=ledger, Item={"pk": {"S": "order#q"}, "sk": {"S": sk}})
    items = ddb.query(
        TableName=ledger,
        KeyConditionExpression="pk = :pk AND sk > :after",
        ExpressionAttributeValues={":pk": {"S": "order#q"}, ":after": {"S": "a"}},
    )["Items"]
    assert [i["sk"]["S"] for i in items] == ["b", "c"]


def test_concurrent_transactions_and_writes_never_fail_internally(aws, tables):
    """moto's backend is not thread-safe; the provider serializes it (see dynamodb.py). Without
    that lock this fails with `InternalError: dictionary changed size during iteration`."""
    from concurrent.futures import ThreadPoolExecutor

    ledger, stock = tables
    ddb = aws("dynamodb")
    ddb.put_item(TableName=stock, Item={"sku": {"S": "sku-busy"}, "available": {"N": "100000"}})

    def work(worker: int) -> list[str]:
        errors = []
        for i in range(60):
            key = {"pk": {"S": f"busy#{worker}#{i}"}, "sk": {"S": "x"}}
            try:
                ddb.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": ledger,
                                "Item": key,
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                        {
                            "Update": {
                                "TableName": stock,
                                "Key": {"sku": {"S": "sku-busy"}},
                                "UpdateExpression": "ADD available :minus",
                                "ConditionExpression": "available >= :one",
                                "ExpressionAttributeValues": {
                                    ":minus": {"N": "-1"},
                                    ":one": {"N": "1"},
                                },
                            }
                        },
                    ]
                )
                ddb.put_item(TableName=stock, Item={"sku": {"S": f"busy-{worker}-{i}"}})
            except ClientError as err:
                errors.append(f"{error_code(err)}: {err}")
        return errors

    with ThreadPoolExecutor(max_workers=8) as pool:
        errors = [e for found in pool.map(work, range(8)) for e in found]
    assert errors == []
    left = ddb.get_item(TableName=stock, Key={"sku": {"S": "sku-busy"}})["Item"]["available"]
    assert left == {"N": str(100000 - 8 * 60)}


def test_a_cancelled_transaction_leaves_every_item_as_it_was(aws, tables):
    """The rollback of `_rolled_back_by_item` (dynamodb.py): items replaced, updated and created
    by a transaction that is then cancelled are all as they were before it."""
    ledger, stock = tables
    ddb = aws("dynamodb")
    kept = {"pk": {"S": "order#rb"}, "sk": {"S": "kept"}, "note": {"S": "before"}}
    ddb.put_item(TableName=ledger, Item=kept)
    ddb.put_item(TableName=stock, Item={"sku": {"S": "sku-rb"}, "available": {"N": "5"}})
    new = {"pk": {"S": "order#rb"}, "sk": {"S": "new"}}
    with pytest.raises(ClientError) as err:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": ledger, "Item": {**kept, "note": {"S": "after"}}}},
                {"Put": {"TableName": ledger, "Item": new}},
                {
                    "Update": {
                        "TableName": stock,
                        "Key": {"sku": {"S": "sku-rb"}},
                        "UpdateExpression": "ADD available :minus",
                        "ExpressionAttributeValues": {":minus": {"N": "-2"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": stock,
                        "Key": {"sku": {"S": "sku-rb-absent"}},
                        "ConditionExpression": "attribute_exists(sku)",
                    }
                },
            ]
        )
    assert error_code(err.value) == "TransactionCanceledException"
    key = {"pk": kept["pk"], "sk": kept["sk"]}
    assert ddb.get_item(TableName=ledger, Key=key)["Item"] == kept
    assert "Item" not in ddb.get_item(TableName=ledger, Key=new)
    left = ddb.get_item(TableName=stock, Key={"sku": {"S": "sku-rb"}})["Item"]["available"]
    assert left == {"N": "5"}


def test_a_transaction_on_a_large_table_costs_about_what_a_put_costs(aws, tables):
    """moto deep-copied every table a transaction touches (dynamodb.py), so each commit cost
    time in proportion to the table: with 3,000 items a one-put transaction took about 60 times
    a PutItem. The fix saves only the items a transaction names. Measured as a ratio to PutItem
    on the same table, interleaved, so a slow machine slows both; without the fix
    (`ORDERFLOW_SKIP_DYNAMODB_TX_FIX=1 cargo xtask cloud up`) this fails."""
    import time

    ledger, _ = tables
    ddb = aws("dynamodb")
    for start in range(0, 3000, 25):
        ddb.batch_write_item(
            RequestItems={
                ledger: [
                    {"PutRequest": {"Item": {"pk": {"S": f"bulk#{i}"}, "sk": {"S": "x"}}}}
                    for i in range(start, start + 25)
                ]
            }
        )
    put, transact = 0.0, 0.0
    for i in range(20):
        item = {"pk": {"S": f"timed#{i}"}, "sk": {"S": "put"}}
        started = time.perf_counter()
        ddb.put_item(TableName=ledger, Item=item)
        put += time.perf_counter() - started
        item = {"pk": {"S": f"timed#{i}"}, "sk": {"S": "transact"}}
        started = time.perf_counter()
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": ledger, "Item": item}}])
        transact += time.perf_counter() - started
    ratio = transact / put
    print(f"one-put transaction / PutItem on 3,000+ items: {ratio:.1f}")
    assert ratio < 5, f"a transaction took {ratio:.1f} times a PutItem"
