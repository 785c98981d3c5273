// The track unit: ECS "Task State Change" events (lastStatus RUNNING or STOPPED) in the configured
// clusters, and a one-minute sweep tick, go through an SQS buffer to the tracker. It records each
// run's progress in the ledger (started, stopped, exit codes, cost), frees the slots of capped
// jobs, checks the schedules for ticks that never produced a run, and publishes classified alerts
// to the alert topic.

import { Duration, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Construct } from 'constructs';
import type { AlertTopic } from './alert';
import { EventBuffer } from './buffer';
import { type FunctionOptions, JobRunnerFunction } from './function';
import { acknowledgeWildcardResource } from './nag';

/** Tuning of the tracker. */
export interface TrackerOptions {
  /** At most this many concurrent tracker invocations (2-1000). @default 2 */
  readonly maxConcurrency?: number;
  /** @default 30 seconds */
  readonly timeout?: Duration;
  /**
   * How long the buffer gathers events before invoking the tracker: it bounds alert latency and
   * lets one invocation digest a storm (one message per job and class). @default 30 seconds
   */
  readonly batchingWindow?: Duration;
  /** What happens to the alert topic's KMS key when the stack is deleted. @default RemovalPolicy.DESTROY (7-day pending window) */
  readonly keyRemovalPolicy?: RemovalPolicy;
  /**
   * The sweep: once a minute an EventBridge rule puts a tick into the tracker's buffer, on which
   * the tracker looks for schedule ticks that never produced a run (`missed_schedule`). Turn it
   * off and no `missed_schedule` alert is ever sent.
   * @default true
   */
  readonly sweep?: boolean;
}

export interface TrackerProps extends TrackerOptions {
  readonly config: string;
  readonly functionOptions?: FunctionOptions;
  /** The alert topic; without it the tracker keeps the run ledger and sends no alert. */
  readonly topic?: AlertTopic;
  /** The clusters whose tasks are tracked. */
  readonly clusters: ecs.ICluster[];
}

/** The statuses of `ECS Task State Change` events the tracker records. */
export const TRACKED_STATUSES = ['RUNNING', 'STOPPED'];

export class Tracker extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  readonly buffer: EventBuffer;
  /** ECS Task State Change, lastStatus RUNNING or STOPPED, in the configured clusters. */
  readonly rule: events.Rule;
  /** The one-minute sweep tick into the buffer (absent with `sweep: false`). */
  readonly sweepRule?: events.Rule;

  constructor(scope: Construct, id: string, props: TrackerProps) {
    super(scope, id);
    const timeout = props.timeout ?? Duration.seconds(30);
    const fn = new JobRunnerFunction(this, 'Tracker', {
      ...props.functionOptions,
      binaryName: 'tracker',
      description: "jobrunner tracker: records each run's progress and publishes classified alerts",
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
        batchSize: 100,
        maxBatchingWindow: props.batchingWindow ?? Duration.seconds(30),
        reportBatchItemFailures: true,
        maxConcurrency: props.maxConcurrency ?? 2,
      }),
    );
    // Delivery into the buffer: retried for a day, then kept in the buffer's dead-letter queue.
    const toBuffer = () =>
      new eventsTargets.SqsQueue(this.buffer.queue, {
        deadLetterQueue: this.buffer.deadLetterQueue,
        retryAttempts: 185,
        maxEventAge: Duration.hours(24),
      });

    this.rule = new events.Rule(this, 'TaskStateChange', {
      description: 'jobrunner: running and stopped ECS tasks of the configured clusters to the tracker buffer',
      eventPattern: {
        source: ['aws.ecs'],
        detailType: ['ECS Task State Change'],
        detail: {
          lastStatus: TRACKED_STATUSES,
          clusterArn: [...new Set(props.clusters)].map((c) => c.clusterArn),
        },
      },
    });
    this.rule.addTarget(toBuffer());

    if (props.sweep ?? true) {
      this.sweepRule = new events.Rule(this, 'Sweep', {
        description: 'jobrunner: tracker sweep tick (missed schedule ticks) to the tracker buffer',
        schedule: events.Schedule.rate(Duration.minutes(1)),
      });
      this.sweepRule.addTarget(toBuffer());
    }

    // sns:Publish on the alert topic only, plus the data key it needs from the topic's own key.
    props.topic?.grantPublish(this.role);
    // Reading the stopped task's definition (container limits, essential flags) for the alert.
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['ecs:DescribeTaskDefinition'], resources: ['*'] }),
    );
    acknowledgeWildcardResource(
      this.role,
      '*',
      'ecs:DescribeTaskDefinition supports no resource-level permissions (AWS requires resource "*"); it is read-only.',
    );
  }

  /**
   * Lets the tracker enforce `max_runtime` and `start_timeout`: list and describe the jobs'
   * tasks (its sweep) and stop the overdue ones, only in `clusters` (`ecs:cluster` condition).
   */
  allowStoppingOverdueTasks(clusters: ecs.ICluster[]): void {
    const stack = Stack.of(this);
    const onClusters = { ArnEquals: { 'ecs:cluster': clusters.map((c) => c.clusterArn) } };
    const tasks = clusters.map((c) => stack.formatArn({ service: 'ecs', resource: 'task', resourceName: `${c.clusterName}/*` }));
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['ecs:StopTask', 'ecs:DescribeTasks'], resources: tasks, conditions: onClusters }),
    );
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ecs:ListTasks'], resources: ['*'], conditions: onClusters }));
    for (const arn of tasks) {
      acknowledgeWildcardResource(
        this.role,
        arn,
        "Stop/describe the jobs' overdue tasks: task IDs are unknown in advance; limited to the jobs' clusters (ecs:cluster condition).",
      );
    }
  }
}
