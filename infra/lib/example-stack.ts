// The example environment: a small but complete setup that shows every jobrunner story.
//
//   1. an object uploaded under `uploads/` → the `process-upload` job (Fargate Spot first);
//   2. a nightly EventBridge Scheduler schedule → the `inventory` job;
//   3. an `orders` worker service that scales with its SQS queue, from zero;
//   4. any of those tasks stopping badly → an email.
//
// It costs next to nothing at idle: public subnets and no NAT gateway (tasks get a public IP to
// pull images and reach AWS APIs; their security group admits no inbound traffic), on-demand
// everything, and the worker service at zero tasks until messages arrive. The stack composes
// the environment and the JobRunner construct, and grants the tasks what they need.

import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { JobRunner } from './jobrunner';
import { acknowledge, acknowledgeWildcardResource } from './nag';

/** The AWS CLI image the example tasks run (no build step, public ECR: no pull credentials). */
export const EXAMPLE_IMAGE = 'public.ecr.aws/aws-cli/aws-cli:2.27.0';

export interface ExampleStackProps extends StackProps {
  /** Emails that receive alerts (each confirms its subscription once). */
  readonly alertEmails?: string[];
  /** Lambda architecture. @default ARM_64 */
  readonly architecture?: lambda.Architecture;
}

export class JobRunnerExampleStack extends Stack {
  readonly jobRunner: JobRunner;
  readonly vpc: ec2.Vpc;
  readonly cluster: ecs.Cluster;
  readonly uploads: s3.Bucket;
  readonly jobTaskDefinition: ecs.FargateTaskDefinition;
  readonly ordersQueue: sqs.Queue;
  readonly workerService: ecs.FargateService;

  constructor(scope: Construct, id: string, props: ExampleStackProps = {}) {
    super(scope, id, {
      description: 'jobrunner example: S3-triggered and scheduled Fargate jobs, a queue-scaled worker service, alerts',
      ...props,
    });

    // Network: two public subnets, no NAT gateway; flow logs of rejected traffic only.
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }],
    });
    this.vpc.addFlowLog('FlowLog', {
      trafficType: ec2.FlowLogTrafficType.REJECT,
      destination: ec2.FlowLogDestination.toCloudWatchLogs(
        new logs.LogGroup(this, 'FlowLogs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY }),
      ),
    });
    const tasksSg = new ec2.SecurityGroup(this, 'TasksSecurityGroup', {
      vpc: this.vpc,
      description: 'jobrunner example tasks: no inbound, HTTPS out',
      allowAllOutbound: false,
    });
    tasksSg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'image pulls and AWS APIs');

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: this.vpc,
      enableFargateCapacityProviders: true,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });

    // Uploads bucket (EventBridge notifications on), with access logs in a second bucket.
    const accessLogs = new s3.Bucket(this, 'AccessLogs', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(90) }],
    });
    this.uploads = new s3.Bucket(this, 'Uploads', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'uploads/',
      eventBridgeEnabled: true,
    });

    // The job: the AWS CLI copies the uploaded object into the task (exec form, no shell).
    const jobLogs = new logs.LogGroup(this, 'JobLogs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
    this.jobTaskDefinition = new ecs.FargateTaskDefinition(this, 'JobTask', {
      family: 'jobrunner-example-job',
      cpu: 256,
      memoryLimitMiB: 512,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
    });
    this.jobTaskDefinition.addContainer('app', {
      containerName: 'app',
      image: ecs.ContainerImage.fromRegistry(EXAMPLE_IMAGE),
      command: ['--version'],
      essential: true,
      memoryReservationMiB: 256,
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'job', logGroup: jobLogs }),
    });
    // Read objects under uploads/ and list that prefix (the nightly inventory), nothing else.
    const uploadedObjects = this.uploads.arnForObjects('uploads/*');
    this.jobTaskDefinition.addToTaskRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [uploadedObjects] }),
    );
    this.jobTaskDefinition.addToTaskRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [this.uploads.bucketArn],
        conditions: { StringLike: { 's3:prefix': ['uploads/*'] } },
      }),
    );
    acknowledgeWildcardResource(
      this.jobTaskDefinition.taskRole,
      uploadedObjects,
      'The job reads whichever object was uploaded: GetObject on keys under uploads/ of this one bucket.',
    );

    // The worker service: polls the orders queue, deletes what it handled; starts at zero.
    const ordersDlq = new sqs.Queue(this, 'OrdersDeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.ordersQueue = new sqs.Queue(this, 'Orders', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.minutes(2),
      deadLetterQueue: { queue: ordersDlq, maxReceiveCount: 5 },
    });
    const workerLogs = new logs.LogGroup(this, 'WorkerLogs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
    const workerTask = new ecs.FargateTaskDefinition(this, 'WorkerTask', {
      family: 'jobrunner-example-worker',
      cpu: 256,
      memoryLimitMiB: 512,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
    });
    workerTask.addContainer('worker', {
      containerName: 'worker',
      image: ecs.ContainerImage.fromRegistry(EXAMPLE_IMAGE),
      entryPoint: ['/bin/sh', '-c'],
      command: [WORKER_LOOP],
      environment: { QUEUE_URL: this.ordersQueue.queueUrl },
      essential: true,
      memoryReservationMiB: 256,
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'worker', logGroup: workerLogs }),
    });
    acknowledge(
      workerTask,
      'AwsSolutions-ECS2',
      'The only environment variable is QUEUE_URL, a queue address and not a secret; secrets would go through `secrets` (Secrets Manager / SSM).',
    );
    this.ordersQueue.grantConsumeMessages(workerTask.taskRole);
    this.workerService = new ecs.FargateService(this, 'Workers', {
      cluster: this.cluster,
      taskDefinition: workerTask,
      desiredCount: 0,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      assignPublicIp: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      securityGroups: [tasksSg],
      capacityProviderStrategies: [{ capacityProvider: 'FARGATE_SPOT', weight: 1 }],
      circuitBreaker: { enable: true, rollback: true },
    });

    this.jobRunner = new JobRunner(this, 'JobRunner', {
      defaults: {
        cluster: this.cluster,
        subnets: { subnetType: ec2.SubnetType.PUBLIC },
        securityGroups: [tasksSg],
        assignPublicIp: true,
        capacity: ['FARGATE_SPOT', 'FARGATE'],
      },
      jobs: {
        'process-upload': {
          taskDefinition: this.jobTaskDefinition,
          container: 'app',
          command: ['s3', 'cp', 's3://{bucket}/{key}', '/tmp/object', '--no-progress'],
          environment: { SOURCE: 's3://{bucket}/{key}' },
          maxRunning: 20,
          tags: { app: 'jobrunner-example' },
          sizeTiers: [
            { maxBytes: 100 * 1024 * 1024, cpu: 256, memory: 512 },
            { cpu: 1024, memory: 2048 },
          ],
        },
        inventory: {
          taskDefinition: this.jobTaskDefinition,
          container: 'app',
          command: ['s3', 'ls', '--recursive', '--summarize', `s3://${this.uploads.bucketName}/uploads/`],
          maxRunning: 1,
          capacity: ['FARGATE'],
        },
      },
      s3Triggers: [{ job: 'process-upload', bucket: this.uploads, prefix: 'uploads/' }],
      schedules: [
        { name: 'nightly-inventory', job: 'inventory', expression: 'cron(0 3 * * ? *)', timezone: 'Europe/Berlin', overlap: 'forbid' },
      ],
      workers: {
        orders: {
          service: this.workerService,
          queue: this.ordersQueue,
          messagesPerTask: 10,
          minTasks: 0,
          maxTasks: 5,
          scaleInAfter: Duration.minutes(5),
        },
      },
      alerts: {
        emails: props.alertEmails,
        notifyOn: ['non_zero_exit', 'oom', 'failed_to_start', 'spot_interruption'],
      },
      functions: { architecture: props.architecture },
    });

    // What `cargo lambda deploy`, uploads and test messages need.
    const out = (id: string, value: string, description: string) => new CfnOutput(this, id, { value, description });
    out('LauncherFunctionName', this.jobRunner.launcher.function.functionName, 'cargo lambda deploy --binary-name launcher <this>');
    out('ScalerFunctionName', this.jobRunner.scaler!.function.functionName, 'cargo lambda deploy --binary-name scaler <this>');
    out('TrackerFunctionName', this.jobRunner.tracker.function.functionName, 'cargo lambda deploy --binary-name tracker <this>');
    out('UploadsBucketName', this.uploads.bucketName, 'upload under uploads/ to run the process-upload job');
    out('StateTableName', this.jobRunner.state.table.tableName, 'the run ledger: [state] table for jobrunner run list|view|cancel');
    out('OrdersQueueUrl', this.ordersQueue.queueUrl, 'send messages here to scale the orders workers up from zero');
    out('AlertTopicArn', this.jobRunner.alertTopic!.topic.topicArn, 'alerts about stopped tasks, failed launches, missed schedule ticks, dead letters and function errors');
    out('AlarmTopicArn', this.jobRunner.alertTopic!.alarmTopic.topicArn, 'alarms about the tracker itself (its dead letters and errors)');
  }
}

/** The worker: long-poll one message, "handle" it (log it), delete it; forever. */
const WORKER_LOOP = [
  'while true; do',
  '  out=$(aws sqs receive-message --queue-url "$QUEUE_URL" --wait-time-seconds 20 --max-number-of-messages 1 \\',
  '        --query "Messages[0].[ReceiptHandle,Body]" --output text) || { sleep 5; continue; }',
  '  if [ -n "$out" ] && [ "$out" != "None" ]; then',
  '    echo "handling: $(printf "%s" "$out" | cut -f2-)"; sleep 2',
  '    aws sqs delete-message --queue-url "$QUEUE_URL" --receipt-handle "$(printf "%s" "$out" | cut -f1)"',
  '  fi',
  'done',
].join('\n');
