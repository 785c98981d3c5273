"""Demo helpers on moto server (the local AWS): create the demo's resources, report what ran.

  demo_moto.py setup CONFIG_IN CONFIG_OUT   cluster, task definitions, bucket, objects; writes a config
                                            whose network IDs are moto's own
  demo_moto.py report                       the tasks ECS started, read back from moto
  demo_moto.py logs FILE                    the launcher's JSON log lines, one per event
  demo_moto.py alerts                       the alerts that reached the SQS subscription of the topic
  demo_moto.py stop DIR                     stops every running task in moto and writes the ECS Task
                                            State Change event of each stop to DIR (for the tracker)
"""
import datetime
import json
import os
import sys
import urllib.request

import boto3

ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
OBJECTS = {
    "images/cat.jpg": 5 * 1024 * 1024,
    "images/summer trip/Ünïcödé café + friends.jpg": 1024,
    "images/dog.jpg": 2048,
    "images/holiday photos/café & bar.jpg": 4096,
}


def client(name):
    return boto3.client(name, endpoint_url=ENDPOINT, region_name="us-east-1")


def setup(config_in, config_out):
    # Keep tasks RUNNING (moto otherwise advances a task's status on every DescribeTasks).
    request = urllib.request.Request(
        f"{ENDPOINT}/moto-api/state-manager/set-transition",
        data=json.dumps({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}}).encode(),
        method="POST",
    )
    urllib.request.urlopen(request).read()

    ecs = client("ecs")
    ecs.create_cluster(clusterName="jobs")
    for family in ("thumbnails", "report"):
        ecs.register_task_definition(
            family=family,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[{"name": "app", "image": f"example.com/{family}:1", "memory": 512}],
        )
    s3 = client("s3")
    s3.create_bucket(Bucket="uploads")
    for key, size in OBJECTS.items():
        s3.put_object(Bucket="uploads", Key=key, Body=b"\0" * size)

    # The alert topic named in examples/jobrunner.toml (moto's default account is 123456789012),
    # an SQS queue subscribed to it to watch alerts arrive, and the state table.
    topic = client("sns").create_topic(Name="jobrunner-alerts")["TopicArn"]
    sqs = client("sqs")
    inbox = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    # The state table as the CDK construct creates it: `pk`, and the listing index of the run
    # ledger. The launcher's queue, where events wait their turn at a job's cap.
    client("dynamodb").create_table(
        TableName="jobrunner-state",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "list_pk", "list_sk")
        ],
        GlobalSecondaryIndexes=[{
            "IndexName": "runs-by-day",
            "KeySchema": [
                {"AttributeName": "list_pk", "KeyType": "HASH"},
                {"AttributeName": "list_sk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }],
        BillingMode="PAY_PER_REQUEST",
    )
    launcher_queue = sqs.create_queue(QueueName="jobrunner-launcher")["QueueUrl"]

    ec2 = client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    with open(config_in, encoding="utf-8") as f:
        text = f.read()
    text = text.replace('subnets = ["subnet-0abc", "subnet-0def"]', f'subnets = ["{subnet}"]')
    text = text.replace('security_groups = ["sg-0123"]', f'security_groups = ["{group}"]')
    text = text.replace(
        'queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/jobrunner-launcher"',
        f'queue_url = "{launcher_queue}"',
    )
    with open(config_out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"   cluster 'jobs', task definitions 'thumbnails' and 'report', bucket 'uploads' with {len(OBJECTS)} objects")
    print(f"   SNS topic {topic} with SQS queue 'alerts-inbox' subscribed; DynamoDB table 'jobrunner-state'")
    print("   (with the run ledger's index 'runs-by-day'); SQS queue 'jobrunner-launcher' for events that wait")
    print(f"   network from moto's default VPC: subnet {subnet}, security group {group}")


def report():
    ecs = client("ecs")
    arns = ecs.list_tasks(cluster="jobs")["taskArns"]
    if not arns:
        print("   (no tasks)")
        return 1
    tasks = ecs.describe_tasks(cluster="jobs", tasks=arns, include=["TAGS"])["tasks"]
    tasks.sort(key=lambda t: t.get("createdAt") or 0)
    rows = [("TASK", "JOB", "STARTED BY", "INPUT", "CPU/MEM", "CAPACITY", "COMMAND")]
    for task in tasks:
        override = task["overrides"]["containerOverrides"][0]
        env = {kv["name"]: kv["value"] for kv in override.get("environment", [])}
        if env.get("JOB_TRIGGER") == "s3":
            source = f"s3://{env['JOB_BUCKET']}/{env['JOB_KEY']} ({env['JOB_SIZE']} B)"
        else:
            source = f"{env.get('JOB_SCHEDULE')} @ {env.get('JOB_SCHEDULED_TIME')}"
        sizing = f"{task['overrides'].get('cpu', '-')}/{task['overrides'].get('memory', '-')}"
        rows.append((
            task["taskArn"].rsplit("/", 1)[-1][:8],
            env.get("JOB_NAME", "?"),
            task.get("startedBy", ""),
            source,
            sizing,
            task.get("capacityProviderName") or task.get("launchType", ""),
            json.dumps(override.get("command", []), ensure_ascii=False),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("   " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    first = tasks[0]
    tags = ", ".join(f"{t['key']}={t['value']}" for t in first.get("tags", []))
    env = first["overrides"]["containerOverrides"][0]["environment"]
    print(f"\n   first task in full: tags [{tags}]")
    for kv in env:
        print(f"     {kv['name']}={kv['value']}")
    return 0


def logs(path):
    tokens = {}
    again = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            start = line.find("{")
            if start < 0:
                continue
            try:
                entry = json.loads(line[start:])
            except ValueError:
                continue
            fields = entry.get("fields", {})
            message = fields.get("message", "")
            if message.startswith("run already launched"):
                again += 1
            if message.startswith(("task started", "already started", "run already launched", "skipped", "waiting", "permanent failure")):
                detail = {k: v for k, v in fields.items() if k not in ("message", "task_arns")}
                print(f"   {entry.get('level', ''):5} {message[:60]:60} {json.dumps(detail, ensure_ascii=False)[:150]}")
                if "client_token" in fields:
                    tokens[fields["client_token"]] = tokens.get(fields["client_token"], 0) + 1
    if again:
        print(f"\n   One S3 event arrived twice (directly, then again in the SQS batch): the second found its run")
        print("   in the ledger with its task and launched nothing (RunTask's clientToken guards it too).")


def alerts():
    sqs = client("sqs")
    inbox = sqs.get_queue_url(QueueName="alerts-inbox")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    if not messages:
        print("   (no alert arrived)")
        return 1
    for message in messages:
        envelope = json.loads(message["Body"])
        attributes = {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}
        print(f"   Subject:    {envelope.get('Subject')}")
        print(f"   Attributes: {json.dumps(attributes)}")
        document = json.loads(envelope["Message"])
        print(f"   JSON body:  {json.dumps(document, ensure_ascii=False)[:300]}...")
    return 0


def stop(directory):
    """Stops every running task and writes the STOPPED event ECS would send for it: exit 0, but
    exit 1 for the first task of the `report` job (a failure, to be alerted and seen in the ledger)."""
    ecs = client("ecs")
    arns = ecs.list_tasks(cluster="jobs", desiredStatus="RUNNING")["taskArns"]
    tasks = ecs.describe_tasks(cluster="jobs", tasks=arns)["tasks"] if arns else []
    tasks.sort(key=lambda t: t.get("createdAt") or 0)
    os.makedirs(directory, exist_ok=True)
    failed_one = False
    for i, task in enumerate(tasks):
        ecs.stop_task(cluster="jobs", task=task["taskArn"], reason="demo: the job finished")
        env = {kv["name"]: kv["value"] for kv in task["overrides"]["containerOverrides"][0].get("environment", [])}
        exit_code = 0
        if env.get("JOB_NAME") == "report" and not failed_one:
            exit_code, failed_one = 1, True
        created = task.get("createdAt") or task.get("startedAt") or datetime.datetime.now(datetime.timezone.utc)
        detail = {
            "taskArn": task["taskArn"],
            "clusterArn": task["clusterArn"],
            "taskDefinitionArn": task["taskDefinitionArn"],
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            "version": 5,
            "startedBy": task.get("startedBy"),
            "group": task.get("group"),
            "launchType": "FARGATE",
            "capacityProviderName": task.get("capacityProviderName") or "FARGATE",
            "cpu": task["overrides"].get("cpu", "256"),
            "memory": task["overrides"].get("memory", "512"),
            "createdAt": created.isoformat(),
            "pullStartedAt": created.isoformat(),
            "startedAt": created.isoformat(),
            "stoppedAt": (created + datetime.timedelta(minutes=3 + i)).isoformat(),
            "stopCode": "EssentialContainerExited",
            "stoppedReason": "Essential container in task exited",
            "overrides": task["overrides"],
            "containers": [{"name": "app", "exitCode": exit_code, "lastStatus": "STOPPED"}],
        }
        event = {
            "version": "0", "id": f"demo-stop-{i}", "detail-type": "ECS Task State Change", "source": "aws.ecs",
            "account": "123456789012", "time": detail["stoppedAt"], "region": "us-east-1",
            "resources": [task["taskArn"]], "detail": detail,
        }
        with open(os.path.join(directory, f"stop-{i:02}.json"), "w", encoding="utf-8") as f:
            json.dump(event, f, default=str)
    print(f"   {len(tasks)} tasks stopped; their Task State Change events are in {directory}/")
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "report":
        sys.exit(report())
    elif sys.argv[1] == "alerts":
        sys.exit(alerts())
    elif sys.argv[1] == "logs":
        logs(sys.argv[2])
    elif sys.argv[1] == "stop":
        sys.exit(stop(sys.argv[2]))
