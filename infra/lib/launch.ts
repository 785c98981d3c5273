// The launch unit: S3 "Object Created" events (EventBridge rule → SQS buffer) and EventBridge
// Scheduler schedules feed the launcher, which turns each into an ECS RunTask. An event for a job
// at its cap goes back into the same buffer with a delay (a new message, so waiting never uses up
// the receive count). The launcher may run tasks only from the configured task-definition
// families, only in their clusters, and may pass only those task definitions' roles to ECS.

import { Duration, Stack, TimeZone } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';
import { EventBuffer } from './buffer';
import type { DefaultsProps, JobProps, S3TriggerProps, ScheduleTriggerProps } from './config';
import { type FunctionOptions, JobRunnerFunction } from './function';
import { acknowledgeManagedPolicy, acknowledgeWildcardResource } from './nag';

/** Tuning of the launcher. */
export interface LauncherOptions {
  /** Messages per invocation from the S3 buffer. @default 10 */
  readonly batchSize?: number;
  /**
   * At most this many concurrent launcher invocations from the S3 buffer (2-1000). Keeps a burst
   * of uploads under Fargate's launch rate (about 20 tasks/s); the rest waits in the queue.
   * @default 5
   */
  readonly maxConcurrency?: number;
  /** @default 30 seconds */
  readonly timeout?: Duration;
  /** Retries of a schedule's invocation when Lambda rejects it (e.g. throttling). @default 3 */
  readonly scheduleRetryAttempts?: number;
  /** How long a schedule's invocation may be retried. @default 1 hour */
  readonly scheduleMaxEventAge?: Duration;
  /**
   * `launcher.wait_seconds`: how long an event for a job at its cap waits in the buffer before
   * it looks again (SQS per-message delay, 1-900 seconds).
   * @default the functions' default (60 seconds)
   */
  readonly waitSeconds?: number;
  /**
   * Create a role S3 Batch Operations can assume to invoke the launcher (an "Invoke AWS Lambda
   * function" job over a manifest, schema 1.0 or 2.0): `batchOperationsRole`. The launcher may
   * then read (HeadObject) the objects of every S3 trigger. Grant the role read access to the
   * manifest and write access to the completion report's bucket yourself.
   * @default false
   */
  readonly s3BatchOperations?: boolean;
}

/** Checks the launcher options that go into the config. */
export function checkLauncherOptions(options: LauncherOptions = {}): void {
  const w = options.waitSeconds;
  if (w !== undefined && !(Number.isInteger(w) && w >= 1 && w <= 900)) {
    throw new Error(`launcher.waitSeconds: ${w} is not a whole number of seconds from 1 to 900 (SQS DelaySeconds)`);
  }
}

export interface LauncherProps extends LauncherOptions {
  readonly config: string;
  readonly functionOptions?: FunctionOptions;
  readonly defaults: DefaultsProps;
  readonly jobs: Record<string, JobProps>;
  readonly s3Triggers: S3TriggerProps[];
  readonly schedules: ScheduleTriggerProps[];
}

/** The input each schedule delivers; the launcher decodes exactly this shape. */
export function scheduleInput(name: string): Record<string, string> {
  return {
    source: 'jobrunner.scheduler',
    schedule: name,
    scheduled_time: scheduler.ContextAttribute.scheduledTime,
    schedule_arn: scheduler.ContextAttribute.scheduleArn,
  };
}

export class Launcher extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  /**
   * Buffers S3 events for the launcher, and events waiting for their job's cap (`launcher.queue_url`);
   * failures end in its dead-letter queue.
   */
  readonly buffer: EventBuffer;
  /** One rule per bucket, routing its matching "Object Created" events to the buffer. */
  readonly s3Rules: events.Rule[] = [];
  readonly schedules: scheduler.Schedule[] = [];
  /** The group of the schedules (present when there are schedules). */
  readonly scheduleGroup?: scheduler.ScheduleGroup;
  /** The role EventBridge Scheduler assumes to invoke the launcher, trusted only from `scheduleGroup`. */
  readonly schedulerRole?: iam.Role;
  /** The role S3 Batch Operations jobs assume to invoke the launcher (with `s3BatchOperations`). */
  readonly batchOperationsRole?: iam.Role;

  constructor(scope: Construct, id: string, props: LauncherProps) {
    super(scope, id);
    checkLauncherOptions(props);
    const timeout = props.timeout ?? Duration.seconds(30);

    const fn = new JobRunnerFunction(this, 'Launcher', {
      ...props.functionOptions,
      binaryName: 'launcher',
      description: 'jobrunner launcher: S3 events and schedules to ECS RunTask',
      config: props.config,
      timeout,
    });
    this.function = fn.function;
    this.role = fn.role;

    this.buffer = new EventBuffer(this, 'Buffer', {
      consumerTimeout: timeout,
    });
    this.function.addEventSource(
      new SqsEventSource(this.buffer.queue, {
        batchSize: props.batchSize ?? 10,
        reportBatchItemFailures: true,
        maxConcurrency: props.maxConcurrency ?? 5,
      }),
    );
    // Events at a job's cap are sent back to this queue with a delay (standard queue: per-message
    // DelaySeconds is allowed). SSE-SQS needs no key grant.
    this.buffer.queue.grant(this.role, 'sqs:SendMessage');
    // Scheduled invocations are asynchronous: after Lambda's retries they land in the same DLQ.
    this.function.configureAsyncInvoke({
      retryAttempts: 2,
      maxEventAge: Duration.hours(1),
      onFailure: new destinations.SqsDestination(this.buffer.deadLetterQueue),
    });

    this.addS3Rules(props.s3Triggers);
    if (props.schedules.length) {
      // The schedules live in their own group: the role's trust names that group, the narrowest
      // aws:SourceArn EventBridge Scheduler supports (it sends the group's ARN, not a schedule's).
      this.scheduleGroup = new scheduler.ScheduleGroup(this, 'ScheduleGroup');
      this.schedulerRole = new iam.Role(this, 'SchedulerRole', {
        assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
          conditions: {
            StringEquals: { 'aws:SourceAccount': Stack.of(this).account },
            ArnEquals: { 'aws:SourceArn': this.scheduleGroup.scheduleGroupArn },
          },
        }),
        description: 'jobrunner: EventBridge Scheduler invokes the launcher',
      });
      for (const s of props.schedules) this.addSchedule(s, props);
      acknowledgeWildcardResource(
        this.schedulerRole,
        `${this.function.functionArn}:*`,
        "CDK's grantInvoke covers the launcher's versions and aliases (ARN:*); the role can invoke only this one function.",
      );
    }
    this.grantLaunch(props);
    if (props.s3BatchOperations) {
      this.batchOperationsRole = new iam.Role(this, 'BatchOperationsRole', {
        assumedBy: new iam.ServicePrincipal('batchoperations.s3.amazonaws.com', {
          conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
        }),
        description: 'jobrunner: S3 Batch Operations jobs invoke the launcher',
      });
      this.function.grantInvoke(this.batchOperationsRole);
      acknowledgeWildcardResource(
        this.batchOperationsRole,
        `${this.function.functionArn}:*`,
        "CDK's grantInvoke covers the launcher's versions and aliases (ARN:*); the role can invoke only this one function.",
      );
    }
    this.grantHeadObject(props);
  }

  /**
   * HeadObject on the objects the launcher may have to read: every trigger's with S3 Batch
   * Operations, else those of jobs with `skipMissing`. `s3:ListBucket` on the bucket makes a
   * deleted object a 404 rather than a 403 (which would read as a permission error).
   */
  private grantHeadObject(props: LauncherProps): void {
    const triggers = props.s3Triggers.filter((t) => props.s3BatchOperations || props.jobs[t.job]?.skipMissing);
    const objectArns = new Set<string>();
    const buckets = new Set<s3.IBucket>();
    for (const t of triggers) {
      objectArns.add(t.bucket.arnForObjects(`${t.prefix ?? ''}*${t.suffix ?? ''}`));
      buckets.add(t.bucket);
    }
    if (!objectArns.size) return;
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:GetObject', 's3:GetObjectVersion'], resources: [...objectArns] }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [...buckets].map((b) => b.bucketArn) }),
    );
    for (const arn of objectArns) {
      acknowledgeWildcardResource(
        this.role,
        arn,
        'HeadObject (s3:GetObject/GetObjectVersion) on the objects one S3 trigger routes (bucket, prefix*suffix): the keys are unknown until an event or a batch task names them.',
      );
    }
  }

  private addS3Rules(triggers: S3TriggerProps[]): void {
    const byBucket = new Map<s3.IBucket, S3TriggerProps[]>();
    for (const t of triggers) byBucket.set(t.bucket, [...(byBucket.get(t.bucket) ?? []), t]);
    let i = 0;
    for (const [bucket, list] of byBucket) {
      if (list.some((t) => t.enableEventBridge ?? true)) {
        bucket.enableEventBridgeNotification();
        acknowledgeNotificationsHandler(bucket);
      }
      const rule = new events.Rule(this, `S3Rule${i++}`, {
        description: 'jobrunner: S3 Object Created events of configured triggers to the launcher buffer',
        eventPattern: {
          source: ['aws.s3'],
          detailType: ['Object Created'],
          detail: { bucket: { name: [bucket.bucketName] }, ...objectFilter(list) },
        },
      });
      rule.addTarget(
        new eventsTargets.SqsQueue(this.buffer.queue, {
          deadLetterQueue: this.buffer.deadLetterQueue,
          retryAttempts: 185,
          maxEventAge: Duration.hours(24),
        }),
      );
      this.s3Rules.push(rule);
    }
  }

  private addSchedule(s: ScheduleTriggerProps, props: LauncherProps): void {
    const schedule = new scheduler.Schedule(this, `Schedule-${s.name}`, {
      description: `jobrunner: schedule ${s.name} runs job ${s.job}`,
      scheduleGroup: this.scheduleGroup,
      schedule: scheduler.ScheduleExpression.expression(s.expression, TimeZone.of(s.timezone ?? 'Etc/UTC')),
      timeWindow: scheduler.TimeWindow.off(),
      target: new schedulerTargets.LambdaInvoke(this.function, {
        role: this.schedulerRole,
        input: scheduler.ScheduleTargetInput.fromObject(scheduleInput(s.name)),
        retryAttempts: props.scheduleRetryAttempts ?? 3,
        maxEventAge: props.scheduleMaxEventAge ?? Duration.hours(1),
        deadLetterQueue: this.buffer.deadLetterQueue,
      }),
    });
    this.schedules.push(schedule);
  }

  /** RunTask and friends, each scoped to the configured families, clusters and roles. */
  private grantLaunch(props: LauncherProps): void {
    const stack = Stack.of(this);
    const byCluster = new Map<ecs.ICluster, Set<string>>();
    const passRoles = new Map<string, iam.IRole>();
    for (const job of Object.values(props.jobs)) {
      const cluster = job.cluster ?? props.defaults.cluster;
      byCluster.set(cluster, (byCluster.get(cluster) ?? new Set()).add(job.taskDefinition.family));
      for (const role of [job.taskDefinition.taskRole, job.taskDefinition.executionRole]) {
        if (role) passRoles.set(role.node.path, role);
      }
    }

    for (const [cluster, families] of byCluster) {
      const onCluster = { ArnEquals: { 'ecs:cluster': cluster.clusterArn } };
      const taskDefinitions = [...families].sort().map((family) =>
        stack.formatArn({ service: 'ecs', resource: 'task-definition', resourceName: `${family}:*` }),
      );
      const tasks = stack.formatArn({ service: 'ecs', resource: 'task', resourceName: `${cluster.clusterName}/*` });
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: ['ecs:RunTask'], resources: taskDefinitions, conditions: onCluster }),
      );
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: ['ecs:StopTask', 'ecs:DescribeTasks'], resources: [tasks], conditions: onCluster }),
      );
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['ecs:TagResource'],
          resources: [tasks],
          conditions: { StringEquals: { 'ecs:CreateAction': 'RunTask' } },
        }),
      );
      // ListTasks has no task resource to scope to; the cluster condition is its only scope.
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: ['ecs:ListTasks'], resources: ['*'], conditions: onCluster }),
      );
      for (const arn of taskDefinitions) {
        acknowledgeWildcardResource(
          this.role,
          arn,
          'RunTask on every revision (:*) of one configured task-definition family, only in its configured cluster (ecs:cluster condition).',
        );
      }
      acknowledgeWildcardResource(
        this.role,
        tasks,
        'Stop/describe/tag the tasks of one configured cluster: task IDs are unknown until launch; StopTask/DescribeTasks also carry the ecs:cluster condition, TagResource ecs:CreateAction=RunTask.',
      );
    }
    if (byCluster.size) {
      acknowledgeWildcardResource(
        this.role,
        '*',
        'ecs:ListTasks has no resource-level scope (AWS: resource "*"); the statement is limited to the configured clusters with the ecs:cluster condition.',
      );
    }

    if (passRoles.size) {
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['iam:PassRole'],
          resources: [...passRoles.values()].map((r) => r.roleArn),
          conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
        }),
      );
    }
  }
}

/**
 * Turning on a bucket's EventBridge notifications goes through CDK's BucketNotificationsHandler
 * (one per stack), whose role has AWS's basic Lambda execution policy for its logs.
 */
function acknowledgeNotificationsHandler(bucket: s3.IBucket): void {
  for (const child of Stack.of(bucket).node.children) {
    if (!child.node.id.startsWith('BucketNotificationsHandler')) continue;
    acknowledgeManagedPolicy(
      child,
      'service-role/AWSLambdaBasicExecutionRole',
      "CDK's own BucketNotificationsHandler (turns on the bucket's EventBridge notifications at deploy time) logs through AWS's basic execution policy (CloudWatch Logs only); its other permission is s3:PutBucketNotification on the configured buckets.",
    );
  }
}

/** The `detail` filter on the object key and size for one bucket's triggers. */
export function objectFilter(triggers: S3TriggerProps[]): Record<string, unknown> {
  const filters = triggers.map(oneObjectFilter);
  if (filters.some((f) => f === undefined)) return {}; // a trigger takes every object
  const unique = [...new Map(filters.map((f) => [JSON.stringify(f), f])).values()];
  return unique.length === 1 ? unique[0]! : { $or: unique };
}

function oneObjectFilter(t: S3TriggerProps): Record<string, unknown> | undefined {
  const object: Record<string, unknown[]> = {};
  const escape = (s: string) => s.replace(/[\\*]/g, '\\$&');
  if (t.prefix && t.suffix) {
    // One key, both conditions: a wildcard (prefix and suffix matchers on the same key are ORed).
    object.key = [{ wildcard: `${escape(t.prefix)}*${escape(t.suffix)}` }];
  } else if (t.prefix) {
    object.key = [{ prefix: t.prefix }];
  } else if (t.suffix) {
    object.key = [{ suffix: t.suffix }];
  }
  if (t.minSize !== undefined || t.maxSize !== undefined) {
    const numeric: (string | number)[] = [];
    if (t.minSize !== undefined) numeric.push('>=', t.minSize);
    if (t.maxSize !== undefined) numeric.push('<=', t.maxSize);
    object.size = [{ numeric }];
  }
  return Object.keys(object).length ? { object } : undefined;
}
