// The stack's CloudWatch alarms: a dead-letter queue holding anything, each function's Lambda
// `Errors`, and from jobrunner's own metrics (namespace `jobrunner`, docs/metrics.md) a job's
// failure rate, a job's missed schedules and the scaler's errors per worker. Each alarm has a
// default and a prop that changes or turns it off.
//
// Alarms have explicit names (the JobRunner's unique name plus what the alarm watches) so that
// the alert topic's policy and its KMS key's policy can name the exact alarm ARNs in their
// `aws:SourceArn` conditions without referring to the alarm resources (the key would otherwise
// depend on the alarms, which depend on the topic, which depends on the key).

import { ArnFormat, Duration, Names, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { jobrunnerMetric } from './dashboard';

/** When one alarm fires. Unset fields keep the alarm's default (see `JobRunnerAlarmsOptions`). */
export interface AlarmSettings {
  /** The alarm fires at this value or above. */
  readonly threshold?: number;
  /** Length of one data point. */
  readonly period?: Duration;
  /** Data points looked at. */
  readonly evaluationPeriods?: number;
  /** Of those, how many must breach. @default the alarm's default, at most `evaluationPeriods` */
  readonly datapointsToAlarm?: number;
}

/** An alarm's settings, or `false` to turn it off. */
export type AlarmOption = AlarmSettings | false;

/** When a job's failure-rate alarm fires; `threshold` is a percentage (0-100). */
export interface FailureRateAlarmSettings extends AlarmSettings {
  /**
   * A period with fewer finished runs than this is not judged (it reads as 0%): one failed run
   * of a job that rarely runs is a 100% rate, and the tracker's own alert already reports it.
   * @default 3
   */
  readonly minimumRuns?: number;
}

/** A failure-rate alarm's settings, or `false` to turn it off. */
export type FailureRateAlarmOption = FailureRateAlarmSettings | false;

/** The alarms the construct creates; every one is on by default. */
export interface JobRunnerAlarmsOptions {
  /**
   * The launcher's dead-letter queue holds a message (S3 events or schedule invocations that
   * could not become tasks). @default at least 1 message (maximum over 5 minutes), 1 period
   */
  readonly launcherDeadLetters?: AlarmOption;
  /**
   * The tracker's dead-letter queue holds a message (task events or sweep ticks it could not record).
   * An alarm about the alert path: it goes to the alarm channel (`alerts.alarmTopic`), not
   * the alert topic. @default as `launcherDeadLetters`
   */
  readonly trackerDeadLetters?: AlarmOption;
  /** The launcher's invocations fail (Lambda `Errors`). @default errors in 2 of 3 five-minute periods */
  readonly launcherErrors?: AlarmOption;
  /**
   * The scaler's invocations fail (Lambda `Errors`: an invocation fails when every worker
   * failed). A failed tick is replaced by the next one a minute later, so one is no alarm.
   * @default errors in 3 of 5 one-minute periods
   */
  readonly scalerErrors?: AlarmOption;
  /**
   * The tracker's invocations fail (Lambda `Errors`). An alarm about the alert path: it goes to
   * the alarm channel. @default errors in 2 of 3 five-minute periods
   */
  readonly trackerErrors?: AlarmOption;
  /**
   * A job's runs fail: of the runs that finished in a period (`runs_finished`, all four
   * outcomes), the share that ended `failed` or `timed_out`, in percent. One alarm per job;
   * `jobFailureRateByJob` overrides it for single jobs.
   * @default 50% or more over one 15-minute period, judged only when at least 3 runs finished
   */
  readonly jobFailureRate?: FailureRateAlarmOption;
  /** Per job name: its own failure-rate settings (merged over `jobFailureRate`), or `false`. */
  readonly jobFailureRateByJob?: Record<string, FailureRateAlarmOption>;
  /**
   * A schedule tick started no run in time (`missed_schedules`, counted by the tracker's
   * sweep). One alarm per job that has schedules. @default 1 or more in a 5-minute period
   */
  readonly missedSchedules?: AlarmOption;
  /**
   * The scaler failed to read or scale one worker (its own `errors` metric, per worker): a
   * partial failure, which Lambda's `Errors` does not count. One alarm per worker.
   * @default errors in 3 of 5 one-minute periods
   */
  readonly workerScalerErrors?: AlarmOption;
}

/** Which topic an alarm publishes to. */
export type AlarmChannel = 'alerts' | 'alert-path';

/** One alarm the construct created, and where it should publish. */
export interface JobRunnerAlarm {
  readonly alarm: cloudwatch.Alarm;
  /** The alarm's ARN, built from its name (no reference to the alarm resource). */
  readonly arn: string;
  /** `alert-path` alarms watch the tracker itself and go to the separate alarm channel. */
  readonly channel: AlarmChannel;
}

/** What the alarms watch; absent units get no alarms. */
export interface JobRunnerAlarmsProps extends JobRunnerAlarmsOptions {
  readonly launcher: { readonly function: lambda.IFunction; readonly deadLetterQueue: sqs.IQueue };
  readonly scaler?: { readonly function: lambda.IFunction };
  readonly tracker?: { readonly function: lambda.IFunction; readonly deadLetterQueue: sqs.IQueue };
  /** The configured jobs' names (failure-rate alarms). */
  readonly jobs?: string[];
  /** The jobs that schedules trigger (missed-schedule alarms). */
  readonly scheduledJobs?: string[];
  /** The configured workers' names (scaler error alarms per worker). */
  readonly workers?: string[];
}

/** Defaults of a dead-letter alarm: anything in the queue. */
const DEAD_LETTER_DEFAULTS = { threshold: 1, period: Duration.minutes(5), evaluationPeriods: 1, datapointsToAlarm: 1 };
/** Defaults of the launcher's and tracker's error alarms: errors that persist beyond one blip. */
const EVENT_ERROR_DEFAULTS = { threshold: 1, period: Duration.minutes(5), evaluationPeriods: 3, datapointsToAlarm: 2 };
/** Defaults of the scaler's error alarm: most of the last five one-minute ticks failed. */
const SCALER_ERROR_DEFAULTS = { threshold: 1, period: Duration.minutes(1), evaluationPeriods: 5, datapointsToAlarm: 3 };
/**
 * Defaults of a job's failure-rate alarm: half or more of at least 3 runs that finished within
 * 15 minutes failed or timed out. One period: a job that suddenly fails in bulk (a bad image,
 * a revoked permission) alarms within 15 minutes; single failures are the tracker's alerts.
 */
const FAILURE_RATE_DEFAULTS = { threshold: 50, period: Duration.minutes(15), evaluationPeriods: 1, datapointsToAlarm: 1 };
const FAILURE_RATE_MINIMUM_RUNS = 3;
/** Defaults of a missed-schedule alarm: any tick missed. */
const MISSED_SCHEDULE_DEFAULTS = { threshold: 1, period: Duration.minutes(5), evaluationPeriods: 1, datapointsToAlarm: 1 };

export class JobRunnerAlarms extends Construct {
  /** Every alarm created, in a fixed order (launcher, scaler, tracker). */
  readonly alarms: JobRunnerAlarm[] = [];
  /** The alarm names start with this (the JobRunner's unique name in its stack). */
  readonly namePrefix: string;

  constructor(scope: Construct, id: string, props: JobRunnerAlarmsProps) {
    super(scope, id);
    // Unique in the account and region: the stack name comes first, then the construct path.
    this.namePrefix = Names.uniqueResourceName(scope, { separator: '-', maxLength: 200 });

    const deadLetters = (queue: sqs.IQueue) => (period: Duration) =>
      queue.metricApproximateNumberOfMessagesVisible({ period, statistic: cloudwatch.Stats.MAXIMUM });
    const errors = (fn: lambda.IFunction) => (period: Duration) =>
      fn.metricErrors({ period, statistic: cloudwatch.Stats.SUM });

    this.add('LauncherDeadLetters', 'launcher-dead-letters', 'alerts', props.launcherDeadLetters, DEAD_LETTER_DEFAULTS,
      deadLetters(props.launcher.deadLetterQueue),
      'jobrunner: S3 events or schedules the launcher could not turn into tasks reached its dead-letter queue; inspect and redrive it');
    this.add('LauncherErrors', 'launcher-errors', 'alerts', props.launcherErrors, EVENT_ERROR_DEFAULTS,
      errors(props.launcher.function),
      'jobrunner: launcher invocations fail (Lambda Errors); see its log group');
    if (props.scaler) {
      this.add('ScalerErrors', 'scaler-errors', 'alerts', props.scalerErrors, SCALER_ERROR_DEFAULTS,
        errors(props.scaler.function),
        'jobrunner: scaler invocations fail (every worker failed in most recent ticks): worker services no longer follow their queues; see its log group');
    }
    if (props.tracker) {
      this.add('TrackerDeadLetters', 'tracker-dead-letters', 'alert-path', props.trackerDeadLetters, DEAD_LETTER_DEFAULTS,
        deadLetters(props.tracker.deadLetterQueue),
        'jobrunner: task events the tracker could not record reached its dead-letter queue: runs may lack their progress and alerts may be missing; inspect and redrive it');
      this.add('TrackerErrors', 'tracker-errors', 'alert-path', props.trackerErrors, EVENT_ERROR_DEFAULTS,
        errors(props.tracker.function),
        'jobrunner: tracker invocations fail (Lambda Errors): alerts may be late or missing; see its log group');
    }
    for (const worker of props.workers ?? []) {
      this.add(`Worker${pascal(worker)}ScalerErrors`, `worker-${worker}-scaler-errors`, 'alerts', props.workerScalerErrors,
        SCALER_ERROR_DEFAULTS,
        (period) => jobrunnerMetric('errors', { worker }, { statistic: cloudwatch.Stats.SUM, period }),
        `jobrunner: the scaler cannot read or scale worker ${worker} (its errors metric) in most recent ticks: the service no longer follows its queue; see the scaler's log group`,
        'workerScalerErrors');
    }
    for (const job of props.jobs ?? []) {
      const option = failureRateOption(props.jobFailureRate, props.jobFailureRateByJob?.[job]);
      const minimumRuns = (option === false ? undefined : option?.minimumRuns) ?? FAILURE_RATE_MINIMUM_RUNS;
      if (!(minimumRuns >= 1)) throw new Error(`alarms.jobFailureRate (job ${job}): minimumRuns must be 1 or more`);
      this.add(`Job${pascal(job)}FailureRate`, `job-${job}-failure-rate`, 'alerts', option, FAILURE_RATE_DEFAULTS,
        (period) => failureRate(job, period, minimumRuns),
        `jobrunner: ${percent(option)} or more of job ${job}'s finished runs failed or timed out (judged when at least ${minimumRuns} finished in a period); see jobrunner run list --job ${job} --state failed`,
        'jobFailureRate');
    }
    for (const job of new Set(props.scheduledJobs ?? [])) {
      this.add(`Job${pascal(job)}MissedSchedules`, `job-${job}-missed-schedules`, 'alerts', props.missedSchedules, MISSED_SCHEDULE_DEFAULTS,
        (period) => jobrunnerMetric('missed_schedules', { job }, { statistic: cloudwatch.Stats.SUM, period }),
        `jobrunner: a schedule of job ${job} fired no run in time (missed_schedules); see the tracker's log group and jobrunner run list --job ${job}`,
        'missedSchedules');
    }
  }

  /** The alarms that publish to `channel`. */
  on(channel: AlarmChannel): JobRunnerAlarm[] {
    return this.alarms.filter((a) => a.channel === channel);
  }

  private add(
    id: string,
    suffix: string,
    channel: AlarmChannel,
    option: AlarmOption | undefined,
    defaults: Required<AlarmSettings>,
    metric: (period: Duration) => cloudwatch.IMetric,
    description: string,
    prop?: string,
  ): void {
    if (option === false) return;
    const threshold = option?.threshold ?? defaults.threshold;
    const period = option?.period ?? defaults.period;
    const evaluationPeriods = option?.evaluationPeriods ?? defaults.evaluationPeriods;
    const datapointsToAlarm = option?.datapointsToAlarm ?? Math.min(defaults.datapointsToAlarm, evaluationPeriods);
    if (datapointsToAlarm > evaluationPeriods) {
      throw new Error(`alarms.${prop ?? id[0].toLowerCase() + id.slice(1)}: datapointsToAlarm (${datapointsToAlarm}) exceeds evaluationPeriods (${evaluationPeriods})`);
    }
    const alarmName = `${this.namePrefix}-${suffix}`;
    const alarm = new cloudwatch.Alarm(this, id, {
      alarmName,
      alarmDescription: description,
      metric: metric(period),
      threshold,
      evaluationPeriods,
      datapointsToAlarm,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const arn = Stack.of(this).formatArn({
      service: 'cloudwatch',
      resource: 'alarm',
      resourceName: alarmName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.alarms.push({ alarm, arn, channel });
  }
}

/** `orders-v2` → `OrdersV2`: a job or worker name in a construct ID. */
function pascal(name: string): string {
  return name
    .split(/[-_]/)
    .filter(Boolean)
    .map((part) => part[0].toUpperCase() + part.slice(1))
    .join('');
}

/** A job's failure-rate settings: the per-job option merged over the general one. */
function failureRateOption(
  general: FailureRateAlarmOption | undefined,
  own: FailureRateAlarmOption | undefined,
): FailureRateAlarmOption | undefined {
  if (own === false) return false;
  if (own === undefined) return general;
  return { ...(general === false ? {} : general), ...own };
}

function percent(option: FailureRateAlarmOption | undefined): string {
  return `${(option === false ? undefined : option?.threshold) ?? FAILURE_RATE_DEFAULTS.threshold}%`;
}

/**
 * The percentage of a job's finished runs that failed or timed out in each period, 0 when fewer
 * than `minimumRuns` finished (outcomes without data count as 0).
 */
function failureRate(job: string, period: Duration, minimumRuns: number): cloudwatch.IMetric {
  const outcome = (o: string) => jobrunnerMetric('runs_finished', { job, outcome: o }, { statistic: cloudwatch.Stats.SUM, period });
  const bad = 'FILL(failed, 0) + FILL(timedOut, 0)';
  const total = `(${bad} + FILL(succeeded, 0) + FILL(cancelled, 0))`;
  return new cloudwatch.MathExpression({
    expression: `IF(${total} >= ${minimumRuns}, 100 * (${bad}) / ${total}, 0)`,
    usingMetrics: {
      failed: outcome('failed'),
      timedOut: outcome('timed_out'),
      succeeded: outcome('succeeded'),
      cancelled: outcome('cancelled'),
    },
    label: `${job} failure rate (%)`,
    period,
  });
}
