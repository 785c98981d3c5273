// The stack's CloudWatch alarms: a dead-letter queue holding anything, and each function's
// Lambda `Errors`. Each alarm has a default and a prop that changes or turns it off.
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
}

/** Defaults of a dead-letter alarm: anything in the queue. */
const DEAD_LETTER_DEFAULTS = { threshold: 1, period: Duration.minutes(5), evaluationPeriods: 1, datapointsToAlarm: 1 };
/** Defaults of the launcher's and tracker's error alarms: errors that persist beyond one blip. */
const EVENT_ERROR_DEFAULTS = { threshold: 1, period: Duration.minutes(5), evaluationPeriods: 3, datapointsToAlarm: 2 };
/** Defaults of the scaler's error alarm: most of the last five one-minute ticks failed. */
const SCALER_ERROR_DEFAULTS = { threshold: 1, period: Duration.minutes(1), evaluationPeriods: 5, datapointsToAlarm: 3 };

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
  ): void {
    if (option === false) return;
    const threshold = option?.threshold ?? defaults.threshold;
    const period = option?.period ?? defaults.period;
    const evaluationPeriods = option?.evaluationPeriods ?? defaults.evaluationPeriods;
    const datapointsToAlarm = option?.datapointsToAlarm ?? Math.min(defaults.datapointsToAlarm, evaluationPeriods);
    if (datapointsToAlarm > evaluationPeriods) {
      throw new Error(`alarms.${id[0].toLowerCase()}${id.slice(1)}: datapointsToAlarm (${datapointsToAlarm}) exceeds evaluationPeriods (${evaluationPeriods})`);
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
