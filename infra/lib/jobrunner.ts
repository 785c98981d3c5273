// JobRunner: wires the launcher, scaler and tracker to the user's clusters, task definitions,
// buckets, queues and services, and to the state table that holds the run ledger. It renders the
// jobrunner config from its props and gives every function the same document inline in
// JOBRUNNER_CONFIG. `grantOperator` gives people what the `jobrunner` commands that call AWS
// call: `run`, `status`, `dlq`, `backfill` and `submit`.
//
// Lambda limits a function's environment variables to 4 KB in total. The config is written
// compactly (no whitespace, unset fields left out); deploy-time values such as ARNs take 60-100
// bytes each. A config over the limit fails here at synth (literal text alone over 4 KB) or at
// deploy; split the jobs over several JobRunner instances or shorten names to stay under it.

import { Annotations, Lazy, Stack } from 'aws-cdk-lib';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { AlertTopic } from './alert';
import { type AlarmChannel, JobRunnerAlarms, type JobRunnerAlarmsOptions } from './alarms';
import { JobRunnerDashboard, type JobRunnerDashboardOptions } from './dashboard';
import {
  CONFIG_ENV,
  type ConfigDocument,
  type ConfigProps,
  checkConfigProps,
  jobNeeds,
  jobCluster,
  type StateSettings,
  type WorkerProps,
  estimateConfigBytes,
  LAMBDA_ENV_LIMIT_BYTES,
  renderConfig,
  workerCluster,
} from './config';
import type { FunctionOptions } from './function';
import { checkLauncherOptions, Launcher, type LauncherOptions } from './launch';
import { acknowledgeWildcardResource } from './nag';
import { Scaler, type ScalerOptions } from './scale';
import { keyPrefixes, STATE_ACCESS, StateTable, type StateTableProps } from './state';
import { Tracker, type TrackerOptions } from './tracker';

export interface JobRunnerProps extends ConfigProps {
  /**
   * Settings of all three functions (architecture, memory, log retention, Cargo manifest, and
   * `tracing: true` for X-Ray active tracing, off by default).
   */
  readonly functions?: FunctionOptions;
  readonly launcher?: LauncherOptions;
  readonly scaler?: ScalerOptions;
  readonly tracker?: TrackerOptions;
  /** The state table (`removalPolicy`) and the ledger's retention (`retentionDays`). */
  readonly state?: StateTableProps & StateSettings;
  /** The CloudWatch alarms: each is on by default and can be tuned or turned off (`false`). */
  readonly alarms?: JobRunnerAlarmsOptions;
  /** The CloudWatch dashboard (jobs, workers, dead letters, functions); `false` leaves it out. */
  readonly dashboard?: JobRunnerDashboardOptions | false;
}

/** Bytes the other variables and the keys take besides the config value. */
const ENV_OVERHEAD_BYTES = CONFIG_ENV.length + 'RUST_LOG'.length + 16;

export class JobRunner extends Construct {
  readonly launcher: Launcher;
  /** Present when workers are configured. */
  readonly scaler?: Scaler;
  /** Records every run's progress; publishes alerts when `alerts` is set. */
  readonly tracker: Tracker;
  readonly alertTopic?: AlertTopic;
  /** The run ledger and the functions' small state. */
  readonly state: StateTable;
  /** Dead-letter and Lambda error alarms; they publish when `alerts` is set. */
  readonly alarms: JobRunnerAlarms;
  /** Absent with `dashboard: false`. */
  readonly dashboard?: JobRunnerDashboard;
  /** The generated config document (tokens where values are known only at deploy time). */
  readonly config: ConfigDocument;
  /** The document as the JSON string each function receives in JOBRUNNER_CONFIG. */
  readonly configJson: string;
  /** The clusters the jobs run in (where runs' tasks are). */
  private readonly jobClusters: ecs.ICluster[];
  /** What `grantOperator` needs of the props: trigger buckets and workers. */
  private readonly operatorScope: { buckets: s3.IBucket[]; workers: WorkerProps[] };

  constructor(scope: Construct, id: string, props: JobRunnerProps) {
    super(scope, id);
    checkConfigProps(props);
    checkLauncherOptions(props.launcher);
    const jobs = props.jobs ?? {};
    const workers = props.workers ?? {};
    const hasWorkers = Object.keys(workers).length > 0;
    this.jobClusters = [...new Set<ecs.ICluster>(Object.values(jobs).map((job) => jobCluster(props, job)))];
    this.operatorScope = {
      buckets: [...new Set((props.s3Triggers ?? []).map((t) => t.bucket))],
      workers: Object.values(workers),
    };

    // Functions read the document lazily: it names the topic and table created below.
    let document: ConfigDocument | undefined;
    const config = Lazy.string({
      produce: () => {
        if (!document) throw new Error('jobrunner config rendered before JobRunner finished');
        return Stack.of(this).toJsonString(document);
      },
    });
    this.configJson = config;

    this.state = new StateTable(this, 'State', { removalPolicy: props.state?.removalPolicy });
    if (props.alerts) {
      this.alertTopic = new AlertTopic(this, 'AlertTopic', {
        emails: props.alerts.emails,
        keyRemovalPolicy: props.tracker?.keyRemovalPolicy,
        alarmTopic: props.alerts.alarmTopic,
        alarmEmails: props.alerts.alarmEmails,
      });
    }

    this.launcher = new Launcher(this, 'Launch', {
      ...props.launcher,
      config,
      functionOptions: props.functions,
      defaults: props.defaults,
      jobs,
      s3Triggers: props.s3Triggers ?? [],
      schedules: props.schedules ?? [],
    });
    this.state.grantState(this.launcher.role, keyPrefixes(STATE_ACCESS.launcher));
    // The launcher publishes `launch_failed` alerts (permanent launch failures, dead-lettered events).
    this.alertTopic?.grantPublish(this.launcher.role);

    if (hasWorkers) {
      this.scaler = new Scaler(this, 'Scale', { ...props.scaler, config, functionOptions: props.functions, workers });
      this.state.grantState(this.scaler.role, keyPrefixes(STATE_ACCESS.scaler));
    }

    // The tracker keeps the run ledger (and frees capped jobs' slots) whether or not alerts
    // are sent.
    {
      const clusters = new Set<ecs.ICluster>([props.defaults.cluster]);
      for (const job of Object.values(jobs)) if (job.cluster) clusters.add(job.cluster);
      for (const w of Object.values(workers)) clusters.add(workerCluster(w));
      this.tracker = new Tracker(this, 'Track', {
        ...props.tracker,
        config,
        functionOptions: props.functions,
        topic: this.alertTopic,
        clusters: [...clusters],
      });
      this.state.grantState(this.tracker.role, keyPrefixes(STATE_ACCESS.tracker));
      const needs = Object.values(jobs).map((job) => jobNeeds(job, props.defaults));
      // Retry requests go to the launcher's queue; overdue tasks are stopped by the tracker.
      if (needs.some((n) => n.retries)) this.launcher.buffer.queue.grantSendMessages(this.tracker.role);
      if (needs.some((n) => n.limits)) this.tracker.allowStoppingOverdueTasks(this.jobClusters);
    }

    this.alarms = new JobRunnerAlarms(this, 'Alarms', {
      ...props.alarms,
      launcher: { function: this.launcher.function, deadLetterQueue: this.launcher.buffer.deadLetterQueue },
      scaler: this.scaler,
      tracker: { function: this.tracker.function, deadLetterQueue: this.tracker.buffer.deadLetterQueue },
      jobs: Object.keys(jobs),
      scheduledJobs: (props.schedules ?? []).map((s) => s.job),
      workers: Object.keys(workers),
    });
    if (props.dashboard !== false) {
      this.dashboard = new JobRunnerDashboard(this, 'Dashboard', {
        ...props.dashboard,
        jobs: Object.keys(jobs),
        workers: Object.keys(workers),
        functions: {
          launcher: this.launcher.function,
          ...(this.scaler ? { scaler: this.scaler.function } : {}),
          tracker: this.tracker.function,
        },
        deadLetterQueues: {
          launcher: this.launcher.buffer.deadLetterQueue,
          tracker: this.tracker.buffer.deadLetterQueue,
        },
      });
    }
    if (this.alertTopic) {
      // Alarms about the alert path go to the alarm channel, every other alarm to the alert topic.
      const channels: [AlarmChannel, sns.ITopic][] = [
        ['alerts', this.alertTopic.topic],
        ['alert-path', this.alertTopic.alarmTopic],
      ];
      for (const [channel, topic] of channels) {
        const alarms = this.alarms.on(channel);
        for (const a of alarms) a.alarm.addAlarmAction(new cwActions.SnsAction(topic));
        this.alertTopic.allowAlarms(topic, alarms.map((a) => a.arn));
      }
    }

    document = renderConfig(props, {
      topicArn: this.alertTopic?.topic.topicArn,
      stateTableName: this.state.table.tableName,
      launcher: { queueUrl: this.launcher.buffer.queue.queueUrl, waitSeconds: props.launcher?.waitSeconds },
    });
    this.config = document;

    const size = estimateConfigBytes(document);
    const budget = LAMBDA_ENV_LIMIT_BYTES - ENV_OVERHEAD_BYTES;
    if (size.literal > budget) {
      throw new Error(
        `jobrunner config is ${size.literal} bytes before deploy-time values, over Lambda's 4 KB environment limit: ` +
          'split the jobs over several JobRunner constructs or shorten names and commands',
      );
    }
    if (size.estimate > budget) {
      Annotations.of(this).addWarningV2(
        'jobrunner:config-size',
        `jobrunner config may exceed Lambda's 4 KB environment limit once deployed: ${size.literal} bytes plus ` +
          `${size.tokens} deploy-time values (estimated ${size.estimate} bytes)`,
      );
    }
  }

  /**
   * Lets an operator (a role, user or group) use `jobrunner run list|view|cancel|rerun`:
   * - `dynamodb:Query` on the state table's `runs-by-day` index (`run list`);
   * - `dynamodb:GetItem`, `dynamodb:PutItem` on the state table, only for the items keyed `run/…`
   *   and `object/…` (`run view` by id or by S3 key; `run cancel` marks the run cancelled);
   * - `ecs:StopTask`, `ecs:DescribeTasks` on the tasks of the jobs' clusters, with the
   *   `ecs:cluster` condition (`run cancel` stops the run's task);
   * - `sqs:SendMessage` on the launcher's queue (`run rerun` requests the run's next attempt).
   */
  grantOperator(grantee: iam.IGrantable): iam.Grant {
    let grant = this.state
      .grantListRuns(grantee)
      .combine(this.state.grantState(grantee, keyPrefixes(STATE_ACCESS.operator)))
      .combine(
        iam.Grant.addToPrincipal({ grantee, actions: ['sqs:SendMessage'], resourceArns: [this.launcher.buffer.queue.queueArn] }),
      );
    grant = grant.combine(this.grantOperatorReads(grantee));
    if (this.jobClusters.length) {
      const stack = Stack.of(this);
      const tasks = this.jobClusters.map((c) =>
        stack.formatArn({ service: 'ecs', resource: 'task', resourceName: `${c.clusterName}/*` }),
      );
      grant = grant.combine(
        iam.Grant.addToPrincipal({
          grantee,
          actions: ['ecs:StopTask', 'ecs:DescribeTasks'],
          resourceArns: tasks,
          conditions: { ArnEquals: { 'ecs:cluster': this.jobClusters.map((c) => c.clusterArn) } },
        }),
      );
      if (Construct.isConstruct(grantee.grantPrincipal)) {
        for (const arn of tasks) {
          acknowledgeWildcardResource(
            grantee.grantPrincipal,
            arn,
            "jobrunner run cancel stops a run's task: task IDs are unknown in advance; the statement is limited to the jobs' clusters (ecs:cluster condition).",
          );
        }
      }
    }
    return grant;
  }

  /**
   * What `jobrunner status`, `dlq list|redrive`, `backfill` and `submit --object` read or move:
   * the jobs' slot records (GetItem only), the depth of every queue jobrunner owns or scales
   * on, the two dead-letter queues' messages (peeked, then moved back to their source queue),
   * the worker services, and the trigger buckets' listings and object heads.
   */
  private grantOperatorReads(grantee: iam.IGrantable): iam.Grant {
    const buffers = [this.launcher.buffer, this.tracker.buffer];
    const { buckets, workers } = this.operatorScope;
    let grant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['dynamodb:GetItem'],
      resourceArns: [this.state.table.tableArn],
      conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['slots/*'] } },
    })
      .combine(
        iam.Grant.addToPrincipal({
          grantee,
          actions: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
          resourceArns: [
            ...buffers.flatMap((b) => [b.queue.queueArn, b.deadLetterQueue.queueArn]),
            ...workers.map((w) => w.queue.queueArn),
          ],
        }),
      )
      .combine(
        iam.Grant.addToPrincipal({
          grantee,
          actions: [
            'sqs:ReceiveMessage',
            'sqs:ChangeMessageVisibility',
            'sqs:DeleteMessage',
            'sqs:StartMessageMoveTask',
            'sqs:ListMessageMoveTasks',
          ],
          resourceArns: buffers.map((b) => b.deadLetterQueue.queueArn),
        }),
      )
      .combine(
        // A redrive sends the tracker's dead letters back to its buffer (the launcher's queue
        // is granted above for reruns and submits).
        iam.Grant.addToPrincipal({ grantee, actions: ['sqs:SendMessage'], resourceArns: [this.tracker.buffer.queue.queueArn] }),
      );
    const services = workers.flatMap((w) => ('service' in w && w.service ? [w.service.serviceArn] : []));
    if (services.length) {
      grant = grant.combine(iam.Grant.addToPrincipal({ grantee, actions: ['ecs:DescribeServices'], resourceArns: services }));
    }
    if (buckets.length) {
      grant = grant
        .combine(
          iam.Grant.addToPrincipal({
            grantee,
            actions: ['s3:ListBucket', 's3:ListBucketVersions'],
            resourceArns: buckets.map((b) => b.bucketArn),
          }),
        )
        .combine(
          iam.Grant.addToPrincipal({
            grantee,
            actions: ['s3:GetObject', 's3:GetObjectVersion'],
            resourceArns: buckets.map((b) => b.arnForObjects('*')),
          }),
        );
      if (Construct.isConstruct(grantee.grantPrincipal)) {
        for (const bucket of buckets) {
          acknowledgeWildcardResource(
            grantee.grantPrincipal,
            bucket.arnForObjects('*'),
            'jobrunner submit --object reads the size and ETag (HeadObject) of an object the operator names: keys are unknown in advance; only the trigger buckets.',
          );
        }
      }
    }
    return grant;
  }
}
