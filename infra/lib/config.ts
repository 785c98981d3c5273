// The construct's props, and the jobrunner config document generated from them.
//
// The props mirror the config file (see the repository README's configuration reference) field
// for field, with CDK references where the config holds names: an `ecs.TaskDefinition` instead of
// a family, an `s3.IBucket` instead of a bucket name, and so on. `renderConfig` turns them into
// the JSON document every function reads from `JOBRUNNER_CONFIG`. Values that are only known at
// deploy time (ARNs, generated names, queue URLs) stay CloudFormation tokens inside the document.
//
// The document's types, and the props' closed sets of values (alert classes, schedule expression
// forms, time zones, launch types, overlap policies), come from `config.schema.ts`, generated from
// the Rust config types' JSON Schema (`jobrunner schema`): the construct cannot write a field or
// a value the functions' parser rejects without failing to compile.

import { Duration, Token } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as schema from './config.schema';

/** Capacity providers in order of preference (`capacity` in the config). */
export type CapacityProvider = 'FARGATE' | 'FARGATE_SPOT' | (string & {});

/** `launch_type` in the config; exclusive with `capacity`. */
export type LaunchType = schema.LaunchType;

/** Where and how tasks run: `[defaults]`, and the same fields on a job. */
export interface LaunchSettings {
  /** Subnets for the task's ENI (`subnets`), selected from the cluster's VPC. */
  readonly subnets?: ec2.SubnetSelection;
  /** Security groups for the task's ENI (`security_groups`). */
  readonly securityGroups?: ec2.ISecurityGroup[];
  /** `assign_public_ip`: needed in public subnets without a NAT gateway. */
  readonly assignPublicIp?: boolean;
  /** `capacity`: capacity providers tried in order when one has no capacity. */
  readonly capacity?: CapacityProvider[];
  /** `launch_type`: exclusive with `capacity`. */
  readonly launchType?: LaunchType;
  /** `platform_version`, e.g. `LATEST` or `1.4.0`. */
  readonly platformVersion?: string;
  /** `propagate_tags`: copy the task definition's tags to each task. */
  readonly propagateTags?: boolean;
  /** `max_runtime`: a task still running this long after it started is stopped (class `timeout`). */
  readonly maxRuntime?: Duration;
  /** `start_timeout`: a task not yet running this long after its launch is stopped. */
  readonly startTimeout?: Duration;
  /** `retry`: retries of failed attempts (none without it). */
  readonly retry?: RetryProps;
}

/** `[jobs.NAME.retry]` / `[defaults.retry]`: which failures are retried, and how. */
export interface RetryProps {
  /** `attempts`: total attempts, the first included (1-10). */
  readonly attempts: number;
  /** `backoff`: delay before attempt 2, doubling after. @default 30 seconds */
  readonly backoff?: Duration;
  /** `max_backoff`: the longest delay (at most 12 h). @default 15 minutes */
  readonly maxBackoff?: Duration;
  /** `on`: the failure classes retried. @default failed_to_start, oom, non_zero_exit, timeout, unhealthy */
  readonly on?: string[];
  /** `exit_codes`: only these exit codes count as a retryable non_zero_exit. */
  readonly exitCodes?: number[];
  /** `on_interruption`: Spot interruptions retry on demand (`on_demand`) or as before (`same`). @default on_demand */
  readonly onInterruption?: 'on_demand' | 'same';
  /** `grow_on_oom`: an OOM retries at the next size tier, or double memory. @default false */
  readonly growOnOom?: boolean;
}

/** `[defaults]`: inherited by every job that does not set its own. */
export interface DefaultsProps extends LaunchSettings {
  /** `cluster`: the cluster jobs run in. */
  readonly cluster: ecs.ICluster;
}

/** One size tier (`[[jobs.NAME.size_tiers]]`). */
export interface SizeTier {
  /** Objects up to this many bytes use this tier; omit on the last tier. */
  readonly maxBytes?: number;
  readonly cpu: number;
  readonly memory: number;
}

/** A job (`[jobs.NAME]`). */
export interface JobProps extends LaunchSettings {
  /** `task_definition`: the job's task definition; the config names its family. */
  readonly taskDefinition: ecs.TaskDefinition;
  /** `container`: the container that receives the command and environment overrides. */
  readonly container: string | ecs.ContainerDefinition;
  /** `command`: replaces the container's command; each element is templated on its own. */
  readonly command?: string[];
  /** `environment`: added to the container's environment; values are templated. */
  readonly environment?: Record<string, string>;
  /** `max_running`: concurrency cap; over it the event waits in its queue. */
  readonly maxRunning?: number;
  /** `tags`: added to every task. */
  readonly tags?: Record<string, string>;
  /** `cpu`: task CPU units when no size tier applies. */
  readonly cpu?: number;
  /** `memory`: task memory (MiB) when no size tier applies. */
  readonly memory?: number;
  /** `size_tiers`: right-size by object size; the first tier whose `maxBytes` fits wins. */
  readonly sizeTiers?: SizeTier[];
  /**
   * `skip_missing`: before launching an event that waited (at the cap, or a retry), read its
   * object with HeadObject; a deleted object's run ends `skipped`. S3-triggered jobs only; needs
   * the state table. The launcher is granted HeadObject on the job's triggers.
   */
  readonly skipMissing?: boolean;
  /** `cluster`: overrides the default cluster for this job. */
  readonly cluster?: ecs.ICluster;
}

/** An S3 trigger (`[[triggers.s3]]`): objects created in `bucket` run `job`. */
export interface S3TriggerProps {
  readonly job: string;
  /** The bucket; EventBridge notifications are turned on for it. */
  readonly bucket: s3.IBucket;
  readonly prefix?: string;
  readonly suffix?: string;
  /** `min_size` in bytes. */
  readonly minSize?: number;
  /** `max_size` in bytes. */
  readonly maxSize?: number;
  /**
   * Turn on the bucket's EventBridge notifications (a CDK custom resource updates the bucket's
   * notification configuration, keeping any other notifications). Set false when the bucket
   * already sends its events to EventBridge.
   * @default true
   */
  readonly enableEventBridge?: boolean;
}

/** What to do when a schedule fires while the previous run still runs. */
export type Overlap = NonNullable<schema.ScheduleTrigger['overlap']>;

/**
 * A schedule expression in a form the functions accept: `rate(...)` or `cron(...)` in
 * EventBridge's syntax (EventBridge Scheduler's one-time `at(...)` is not one).
 */
export type ScheduleExpression = schema.ScheduleExpression;

/** An IANA time zone name the functions know, e.g. `Europe/Berlin`. */
export type TimeZoneName = schema.TimeZone;

/** A schedule (`[[triggers.schedule]]`), deployed as an EventBridge Scheduler schedule. */
export interface ScheduleTriggerProps {
  /** Schedule name: letters, digits, `-`, `_`. */
  readonly name: string;
  readonly job: string;
  /** `rate(1 hour)` or `cron(0 3 * * ? *)`, in EventBridge's syntax. */
  readonly expression: ScheduleExpression;
  /** IANA time zone of the expression, e.g. `Europe/Berlin`. @default UTC */
  readonly timezone?: TimeZoneName;
  /** @default 'allow' */
  readonly overlap?: Overlap;
  /** Added to the job's environment for this schedule's tasks. */
  readonly environment?: Record<string, string>;
  /** Replaces the job's command for this schedule's tasks. */
  readonly command?: string[];
}

/** A scheduled-capacity window of a worker (`[[workers.NAME.windows]]`). */
export interface ScalingWindowProps {
  /** Days or ranges of days, e.g. `['MON-FRI']`; empty or omitted means every day. */
  readonly days?: schema.DaySpan[];
  /** `HH:MM`, inclusive. */
  readonly start: string;
  /** `HH:MM`, exclusive. */
  readonly end: string;
  /** An IANA time zone name or a fixed offset such as `+01:00`. @default UTC */
  readonly timezone?: schema.WindowZone;
  readonly minTasks?: number;
  readonly maxTasks?: number;
}

/** What every worker scales on (`[workers.NAME]`), in either mode. */
export interface WorkerScalingProps {
  /** The queue the workers poll. */
  readonly queue: sqs.IQueue;
  /** `messages_per_task`: target backlog per task. */
  readonly messagesPerTask: number;
  /** `min_tasks`. @default 0 */
  readonly minTasks?: number;
  /** `max_tasks`. */
  readonly maxTasks: number;
  /** `scale_in_after_seconds`: stabilization window before removing tasks. @default 5 minutes */
  readonly scaleInAfter?: Duration;
  /** `count_delayed`: count delayed messages as backlog. */
  readonly countDelayed?: boolean;
  /** `max_step_out`: at most this many tasks added per decision. */
  readonly maxStepOut?: number;
  /** `max_step_in`: at most this many tasks removed per decision. */
  readonly maxStepIn?: number;
  /** `sample_every_seconds`: re-sample within one invocation (sub-minute reaction). */
  readonly sampleEverySeconds?: number;
  /** `windows`: scheduled capacity. */
  readonly windows?: ScalingWindowProps[];
}

/** A worker service scaled on its queue's backlog (`[workers.NAME]`, `mode = "service"`). */
export interface ServiceWorkerProps extends WorkerScalingProps {
  /** @default 'service' */
  readonly mode?: 'service';
  /** The ECS service of workers (a `FargateService`, or one imported with its cluster). */
  readonly service: ecs.IBaseService;
}

/**
 * Workers as standalone tasks launched per backlog (`[workers.NAME] mode = "jobs"`): each task
 * runs `jobrunner-worker --queue-url … --idle-exit … -- <command…>` (the image needs
 * `jobrunner-worker` on its PATH) and exits once the queue is idle. Launch settings not set
 * here come from `defaults`; `minTasks` must be 0.
 */
export interface JobsWorkerProps extends WorkerScalingProps, Omit<LaunchSettings, 'maxRuntime' | 'startTimeout' | 'retry'> {
  readonly mode: 'jobs';
  /** `cluster`: where the tasks run. */
  readonly cluster: ecs.ICluster;
  /** `task_definition`: the workers' task definition; the config names its family. */
  readonly taskDefinition: ecs.TaskDefinition;
  /** `container`: the container whose command runs `jobrunner-worker`. */
  readonly container: string | ecs.ContainerDefinition;
  /** `command`: what `jobrunner-worker` runs once per message. */
  readonly command: string[];
  /** `idle_exit`: a task exits after this long without a message. @default 60 seconds */
  readonly idleExit?: Duration;
}

/** A worker in either mode. */
export type WorkerProps = ServiceWorkerProps | JobsWorkerProps;

/** The cluster a worker's tasks run in. */
export function workerCluster(w: WorkerProps): ecs.ICluster {
  return w.mode === 'jobs' ? w.cluster : w.service.cluster;
}

/** The alert classes of the config's `notify_on` (why a task stopped, or why a run never started). */
export type AlertClass = schema.Class;

/** Every alert class, once (the compiler checks the list is complete and exact). */
const ALERT_CLASS_SET: Record<AlertClass, true> = {
  succeeded: true,
  non_zero_exit: true,
  oom: true,
  failed_to_start: true,
  spot_interruption: true,
  scaled_in: true,
  user_stopped: true,
  timeout: true,
  unhealthy: true,
  unknown: true,
  launch_failed: true,
  missed_schedule: true,
};

/** Every alert class `notifyOn` may name. */
export const ALERT_CLASSES = Object.keys(ALERT_CLASS_SET) as AlertClass[];

/** Where alerts go (`[alerts]`: stopped tasks, failed launches, missed schedule ticks); the construct creates the topic. */
export interface AlertsProps {
  /** Email addresses subscribed to the alert topic (each must confirm the subscription). */
  readonly emails?: string[];
  /** `notify_on`. @default the tracker's default classes */
  readonly notifyOn?: AlertClass[];
  /**
   * The channel of the alarms about the alert path itself (the tracker's dead letters and
   * errors), which must not depend on the alert topic alone. Bring a topic of your own (e.g. one
   * wired to your paging tool); it must let CloudWatch publish (SNS's default policy does; a
   * KMS-encrypted topic's key must allow `cloudwatch.amazonaws.com`).
   * @default a second topic, encrypted with the alert topic's key, subscribed by `alarmEmails`
   */
  readonly alarmTopic?: sns.ITopic;
  /** Emails subscribed to the created alarm topic (not used with `alarmTopic`). @default `emails` */
  readonly alarmEmails?: string[];
  /**
   * `missed_schedule_after`: a schedule tick with no run this long after its time is a
   * `missed_schedule` alert, e.g. `'10m'` or `'1h 30m'` (humantime).
   * @default the functions' default (10 minutes)
   */
  readonly missedScheduleAfter?: string;
}

/** `[state]`: the table itself is created by the construct. */
export interface StateSettings {
  /**
   * `retention_days`: days a run stays in the ledger after its last change (DynamoDB TTL).
   * @default the functions' default (30 days)
   */
  readonly retentionDays?: number;
}

/**
 * `[prices]`: USD per hour for one vCPU and one GB of memory, on demand and on Fargate Spot, used
 * for the runs' estimated cost instead of the functions' built-in price table (for every region).
 */
export interface PricesProps {
  readonly vcpuHour: number;
  readonly gbHour: number;
  readonly spotVcpuHour: number;
  readonly spotGbHour: number;
}

/** The parts of the config the construct supplies itself: what it creates, and the launcher's settings. */
export interface CreatedResources {
  readonly topicArn?: string;
  readonly stateTableName?: string;
  /** `[launcher]`: the launcher's own buffer queue, and how long a waiting event sleeps. */
  readonly launcher?: { readonly queueUrl: string; readonly waitSeconds?: number };
}

/** The config's props, as the `JobRunner` construct takes them. */
export interface ConfigProps {
  readonly defaults: DefaultsProps;
  readonly jobs?: Record<string, JobProps>;
  readonly s3Triggers?: S3TriggerProps[];
  readonly schedules?: ScheduleTriggerProps[];
  readonly workers?: Record<string, WorkerProps>;
  readonly alerts?: AlertsProps;
  readonly state?: StateSettings;
  readonly prices?: PricesProps;
}

/** Lambda's limit on the total size of a function's environment variables (keys and values). */
export const LAMBDA_ENV_LIMIT_BYTES = 4096;

/** The environment variable every function reads its config from. */
export const CONFIG_ENV = 'JOBRUNNER_CONFIG';

const NAME = /^[A-Za-z0-9_-]+$/;

/** The JSON document (CloudFormation tokens where values are only known at deploy time). */
export type ConfigDocument = schema.ConfigDocument;

/** Checks what can be checked at synth time; the Rust validator checks the rest at init. */
export function checkConfigProps(props: ConfigProps): void {
  const jobs = props.jobs ?? {};
  for (const name of Object.keys(jobs)) {
    if (!NAME.test(name)) throw new Error(`jobs.${name}: job names may use letters, digits, '-' and '_'`);
    const job = jobs[name];
    containerName(job, `jobs.${name}`);
    if (job.capacity && job.launchType) throw new Error(`jobs.${name}: set capacity or launchType, not both`);
  }
  if (props.defaults.capacity && props.defaults.launchType) {
    throw new Error('defaults: set capacity or launchType, not both');
  }
  (props.s3Triggers ?? []).forEach((t, i) => {
    if (!(t.job in jobs)) throw new Error(`triggers.s3[${i}].job: unknown job '${t.job}'`);
  });
  const seen = new Set<string>();
  (props.schedules ?? []).forEach((s, i) => {
    if (!NAME.test(s.name)) throw new Error(`triggers.schedule[${i}].name: '${s.name}' may use letters, digits, '-' and '_'`);
    if (seen.has(s.name)) throw new Error(`triggers.schedule[${i}].name: duplicate schedule '${s.name}'`);
    seen.add(s.name);
    if (!(s.job in jobs)) throw new Error(`triggers.schedule[${i}].job: unknown job '${s.job}'`);
  });
  for (const name of Object.keys(props.workers ?? {})) {
    if (!NAME.test(name)) throw new Error(`workers.${name}: worker names may use letters, digits, '-' and '_'`);
  }
  const days = props.state?.retentionDays;
  if (days !== undefined && !(Number.isInteger(days) && days >= 1)) {
    throw new Error(`state.retentionDays: ${days} is not a whole number of days, at least 1`);
  }
  for (const [field, price] of Object.entries(props.prices ?? {})) {
    if (!(Number.isFinite(price) && price >= 0)) throw new Error(`prices.${field}: ${price} is not a price (USD per hour, 0 or more)`);
  }
}

/** The container name a job's overrides go to; checks it exists in the task definition. */
export function containerName(job: JobProps, path: string): string {
  const name = typeof job.container === 'string' ? job.container : job.container.containerName;
  if (!job.taskDefinition.findContainer(name)) {
    throw new Error(`${path}.container: task definition '${job.taskDefinition.family}' has no container '${name}'`);
  }
  return name;
}

/** The cluster a job runs in (its own, else the default). */
export function jobCluster(props: ConfigProps, job: JobProps): ecs.ICluster {
  return job.cluster ?? props.defaults.cluster;
}

/** Renders the config document from the props. */
export function renderConfig(props: ConfigProps, created: CreatedResources): ConfigDocument {
  checkConfigProps(props);
  const d = props.defaults;
  const config: schema.ConfigDocument = {
    defaults: {
      cluster: d.cluster.clusterArn,
      ...launchSettings(d, d.cluster),
    },
    jobs: Object.fromEntries(
      Object.entries(props.jobs ?? {}).map(([name, job]) => [name, renderJob(name, job, props)]),
    ),
  };

  const s3 = (props.s3Triggers ?? []).map((t): schema.S3Trigger => ({
    job: t.job,
    bucket: t.bucket.bucketName,
    prefix: t.prefix,
    suffix: t.suffix,
    min_size: t.minSize,
    max_size: t.maxSize,
  }));
  const schedule = (props.schedules ?? []).map((s): schema.ScheduleTrigger => ({
    name: s.name,
    job: s.job,
    expression: s.expression,
    timezone: s.timezone,
    overlap: s.overlap,
    environment: nonEmpty(s.environment),
    command: s.command,
  }));
  if (s3.length || schedule.length) {
    config.triggers = { s3: s3.length ? s3 : undefined, schedule: schedule.length ? schedule : undefined };
  }

  const workers = Object.entries(props.workers ?? {});
  if (workers.length) {
    config.workers = Object.fromEntries(workers.map(([name, w]) => [name, renderWorker(name, w)]));
  }
  if (created.topicArn) {
    config.alerts = {
      topic_arn: created.topicArn,
      notify_on: props.alerts?.notifyOn,
      missed_schedule_after: props.alerts?.missedScheduleAfter,
    };
  }
  if (created.stateTableName) {
    config.state = { table: created.stateTableName, retention_days: props.state?.retentionDays };
  }
  if (created.launcher) {
    config.launcher = { queue_url: created.launcher.queueUrl, wait_seconds: created.launcher.waitSeconds };
  }
  if (props.prices) {
    const p = props.prices;
    config.prices = { vcpu_hour: p.vcpuHour, gb_hour: p.gbHour, spot_vcpu_hour: p.spotVcpuHour, spot_gb_hour: p.spotGbHour };
  }
  return prune(config) as schema.ConfigDocument;
}

function renderJob(name: string, job: JobProps, props: ConfigProps): schema.Job {
  return {
    task_definition: job.taskDefinition.family,
    container: containerName(job, `jobs.${name}`),
    command: job.command,
    environment: nonEmpty(job.environment),
    max_running: job.maxRunning,
    tags: nonEmpty(job.tags),
    cpu: job.cpu,
    memory: job.memory,
    size_tiers: job.sizeTiers?.map((t) => ({ max_bytes: t.maxBytes, cpu: t.cpu, memory: t.memory })),
    skip_missing: job.skipMissing || undefined,
    cluster: job.cluster?.clusterArn,
    ...launchSettings(job, jobCluster(props, job)),
  };
}

/** The launch settings a job shares with `[defaults]` (less `cluster`, which each sets itself). */
type RenderedLaunchSettings = Omit<schema.LaunchSettings, 'cluster' | 'placement_constraints' | 'placement_strategy'>;

function launchSettings(s: LaunchSettings, cluster: ecs.ICluster): RenderedLaunchSettings {
  return {
    subnets: s.subnets ? cluster.vpc.selectSubnets(s.subnets).subnetIds : undefined,
    security_groups: s.securityGroups?.map((g) => g.securityGroupId),
    assign_public_ip: s.assignPublicIp,
    capacity: s.capacity,
    launch_type: s.launchType,
    platform_version: s.platformVersion,
    propagate_tags: s.propagateTags,
    max_runtime: s.maxRuntime && `${s.maxRuntime.toSeconds()}s`,
    start_timeout: s.startTimeout && `${s.startTimeout.toSeconds()}s`,
    retry: s.retry && {
      attempts: s.retry.attempts,
      backoff: s.retry.backoff && `${s.retry.backoff.toSeconds()}s`,
      max_backoff: s.retry.maxBackoff && `${s.retry.maxBackoff.toSeconds()}s`,
      on: s.retry.on as schema.Retry['on'],
      exit_codes: s.retry.exitCodes,
      on_interruption: s.retry.onInterruption,
      grow_on_oom: s.retry.growOnOom,
    },
  };
}

/** Whether the job (with `[defaults]`) has a time limit, or retries. */
export function jobNeeds(job: LaunchSettings, defaults: LaunchSettings): { limits: boolean; retries: boolean } {
  return {
    limits: Boolean(job.maxRuntime ?? job.startTimeout ?? defaults.maxRuntime ?? defaults.startTimeout),
    retries: Boolean(job.retry ?? defaults.retry),
  };
}

function renderWorker(name: string, w: WorkerProps): schema.Worker {
  const scaling = {
    queue_url: w.queue.queueUrl,
    messages_per_task: w.messagesPerTask,
    min_tasks: w.minTasks ?? 0,
    max_tasks: w.maxTasks,
    scale_in_after_seconds: (w.scaleInAfter ?? Duration.minutes(5)).toSeconds(),
    count_delayed: w.countDelayed,
    max_step_out: w.maxStepOut,
    max_step_in: w.maxStepIn,
    sample_every_seconds: w.sampleEverySeconds,
    windows: w.windows?.map((x): schema.ScalingWindow => ({
      days: x.days,
      start: x.start,
      end: x.end,
      timezone: x.timezone,
      min_tasks: x.minTasks,
      max_tasks: x.maxTasks,
    })),
  };
  if (w.mode !== 'jobs') {
    return { cluster: w.service.cluster.clusterArn, service: w.service.serviceName, ...scaling };
  }
  const { max_runtime: _r, start_timeout: _s, retry: _t, ...launch } = launchSettings(w, w.cluster);
  return {
    mode: 'jobs',
    cluster: w.cluster.clusterArn,
    task_definition: w.taskDefinition.family,
    container: containerName(w, `workers.${name}`),
    command: w.command,
    idle_exit: w.idleExit && `${w.idleExit.toSeconds()}s`,
    ...launch,
    ...scaling,
  };
}

function nonEmpty<T extends object>(o: T | undefined): T | undefined {
  return o && Object.keys(o).length ? o : undefined;
}

/** Drops `undefined` members so they don't reach the (strict) Rust parser. */
function prune(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(prune);
  if (value && typeof value === 'object' && !Token.isUnresolved(value)) {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, prune(v)]),
    );
  }
  return value;
}

/** Length a token is assumed to take once deployed, for the size estimate (ARNs are ~90). */
const TOKEN_ESTIMATE = 100;

/**
 * Estimates the bytes the rendered document takes once deployed: literal text as is, each
 * CloudFormation token as `TOKEN_ESTIMATE` bytes (an ARN or queue URL is 60-100 characters).
 */
export function estimateConfigBytes(config: object): { literal: number; estimate: number; tokens: number } {
  const text = JSON.stringify(config);
  const pattern = /[$#]\{Token\[[^\]]+\]\}/g;
  const tokens = text.match(pattern) ?? [];
  const literal = Buffer.byteLength(text.replace(pattern, ''), 'utf8');
  return { literal, tokens: tokens.length, estimate: literal + tokens.length * TOKEN_ESTIMATE };
}
