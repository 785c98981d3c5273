"""Resources the cold-start benchmark's first invocations use, in moto server (the local AWS).

  moto_setup.py OUT_DIR

Creates the ECS cluster `jobs` (task definitions `thumbnails` and `report`, service
`order-workers`), the SQS queue `orders`, the DynamoDB table `jobrunner-state` and the SNS topic
`jobrunner-alerts`, then writes one config per function into OUT_DIR (config-launcher.toml,
config-scaler.toml, config-tracker.toml), each holding only the sections its function uses.
"""
import json
import os
import sys
import urllib.request

import boto3

ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
REGION = "us-east-1"


def client(name):
    return boto3.client(name, endpoint_url=ENDPOINT, region_name=REGION)


def main(out_dir):
    # Keep tasks RUNNING (moto otherwise advances a task's status on every DescribeTasks).
    request = urllib.request.Request(
        f"{ENDPOINT}/moto-api/state-manager/set-transition",
        data=json.dumps({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}}).encode(),
        method="POST",
    )
    urllib.request.urlopen(request).read()

    ec2 = client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]

    ecs = client("ecs")
    ecs.create_cluster(clusterName="jobs")
    for family in ("thumbnails", "report", "order-worker"):
        ecs.register_task_definition(
            family=family,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[{"name": "app", "image": f"example.com/{family}:1", "memory": 512}],
        )
    # The tracker's event stops thumbnails:7 (app essential, otel-collector a sidecar): register
    # up to that revision, so its DescribeTaskDefinition finds the definition as in production.
    for _ in range(2, 8):
        ecs.register_task_definition(
            family="thumbnails",
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[
                {
                    "name": "app",
                    "image": "example.com/thumbnails:1",
                    "memory": 384,
                    "essential": True,
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {
                            "awslogs-group": "/ecs/thumbnails",
                            "awslogs-region": REGION,
                            "awslogs-stream-prefix": "ecs",
                        },
                    },
                },
                {
                    "name": "otel-collector",
                    "image": "example.com/otel-collector:1",
                    "memory": 128,
                    "essential": False,
                },
            ],
        )
    ecs.create_service(
        cluster="jobs",
        serviceName="order-workers",
        taskDefinition="order-worker",
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}},
    )
    queue_url = client("sqs").create_queue(QueueName="orders")["QueueUrl"]
    client("dynamodb").create_table(
        TableName="jobrunner-state",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    topic_arn = client("sns").create_topic(Name="jobrunner-alerts")["TopicArn"]

    configs = {
        "launcher": f"""[defaults]
cluster = "jobs"
subnets = ["{subnet}"]
security_groups = ["{group}"]
assign_public_ip = false
capacity = ["FARGATE_SPOT", "FARGATE"]

[jobs.thumbnails]
task_definition = "thumbnails"
container = "app"
command = ["resize", "--input", "s3://{{bucket}}/{{key}}", "--width", "512"]
environment = {{ OUTPUT_PREFIX = "thumbs/" }}
tags = {{ team = "media" }}

[[jobs.thumbnails.size_tiers]]
max_bytes = 104857600
cpu = 512
memory = 1024

[[jobs.thumbnails.size_tiers]]
cpu = 2048
memory = 8192

[[triggers.s3]]
job = "thumbnails"
bucket = "uploads"
prefix = "images/"
suffix = ".jpg"
""",
        "scaler": f"""[workers.orders]
cluster = "jobs"
service = "order-workers"
queue_url = "{queue_url}"
messages_per_task = 10
min_tasks = 0
max_tasks = 50
scale_in_after_seconds = 300

[state]
table = "jobrunner-state"
""",
        "tracker": f"""[alerts]
topic_arn = "{topic_arn}"
notify_on = ["non_zero_exit", "oom", "failed_to_start", "spot_interruption"]
""",
    }
    os.makedirs(out_dir, exist_ok=True)
    for name, text in configs.items():
        with open(os.path.join(out_dir, f"config-{name}.toml"), "w", encoding="utf-8") as f:
            f.write(text)
    print(f"moto: cluster jobs, service order-workers, queue {queue_url}, table jobrunner-state, topic {topic_arn}")


if __name__ == "__main__":
    main(sys.argv[1])
