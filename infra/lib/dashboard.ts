// The stack's CloudWatch dashboard: what the functions' metrics (namespace `jobrunner`, see
// docs/metrics.md) and AWS's own say about the jobs, the workers, the dead-letter queues and
// the three functions. One row per subject, built from the jobs and workers in the config.

import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** The namespace every jobrunner metric is emitted under (Embedded Metric Format). */
export const METRIC_NAMESPACE = 'jobrunner';
/** The four outcomes of `runs_finished`. */
export const OUTCOMES = ['succeeded', 'failed', 'timed_out', 'cancelled'] as const;

/** A jobrunner metric (namespace `jobrunner`) with its dimensions. */
export function jobrunnerMetric(
  metricName: string,
  dimensionsMap: Record<string, string>,
  options: { statistic: string; period: Duration; label?: string; unit?: cloudwatch.Unit },
): cloudwatch.Metric {
  return new cloudwatch.Metric({ namespace: METRIC_NAMESPACE, metricName, dimensionsMap, ...options });
}

/** Settings of the dashboard. */
export interface JobRunnerDashboardOptions {
  /** @default a name CloudFormation generates */
  readonly dashboardName?: string;
  /** Length of one data point of every graph. @default 5 minutes */
  readonly period?: Duration;
  /** The time range shown when the dashboard opens. @default 3 hours (`-PT3H`) */
  readonly start?: string;
}

export interface JobRunnerDashboardProps extends JobRunnerDashboardOptions {
  /** The configured jobs' names. */
  readonly jobs: string[];
  /** The configured workers' names (scaled by the scaler). */
  readonly workers: string[];
  /** Each function by the name shown on the dashboard (`launcher`, `scaler`, `tracker`). */
  readonly functions: Record<string, lambda.IFunction>;
  /** Each dead-letter queue by whose it is (`launcher`, `tracker`). */
  readonly deadLetterQueues: Record<string, sqs.IQueue>;
}

const FULL = 24;
const HEIGHT = 6;

export class JobRunnerDashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: JobRunnerDashboardProps) {
    super(scope, id);
    const period = props.period ?? Duration.minutes(5);
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      start: props.start ?? '-PT3H',
    });
    const sum = { statistic: cloudwatch.Stats.SUM, period };
    const max = { statistic: cloudwatch.Stats.MAXIMUM, period };
    const half = (n: number) => Math.max(6, Math.floor(FULL / Math.max(1, n)));

    if (props.jobs.length) {
      this.dashboard.addWidgets(
        new cloudwatch.TextWidget({ markdown: '## Jobs\nRuns by outcome, queue wait (event → RunTask) and slots in use against the cap.', width: FULL, height: 2 }),
      );
      this.dashboard.addWidgets(
        new cloudwatch.GraphWidget({
          title: 'Queue wait p95 (s), per job',
          width: FULL,
          height: HEIGHT,
          left: props.jobs.map((job) =>
            jobrunnerMetric('queue_wait', { job }, { statistic: cloudwatch.Stats.p(95), period, label: job }),
          ),
          leftYAxis: { min: 0, label: 'seconds', showUnits: false },
        }),
      );
      for (const job of props.jobs) {
        this.dashboard.addWidgets(
          new cloudwatch.GraphWidget({
            title: `${job}: runs by outcome`,
            width: FULL / 2,
            height: HEIGHT,
            stacked: true,
            left: OUTCOMES.map((outcome) =>
              jobrunnerMetric('runs_finished', { job, outcome }, { ...sum, label: outcome }),
            ),
            leftYAxis: { min: 0, showUnits: false },
          }),
          new cloudwatch.GraphWidget({
            title: `${job}: running vs cap`,
            width: FULL / 2,
            height: HEIGHT,
            left: [
              jobrunnerMetric('running', { job }, { ...max, label: 'running' }),
              jobrunnerMetric('max_running', { job }, { ...max, label: 'cap (max_running)' }),
            ],
            leftYAxis: { min: 0, showUnits: false },
          }),
        );
      }
    }

    if (props.workers.length) {
      this.dashboard.addWidgets(
        new cloudwatch.TextWidget({ markdown: '## Workers\nThe scaler\'s view of each worker: its queue\'s backlog and the tasks it asked for.', width: FULL, height: 2 }),
      );
      this.dashboard.addWidgets(
        ...props.workers.map(
          (worker) =>
            new cloudwatch.GraphWidget({
              title: `${worker}: desired vs backlog`,
              width: half(props.workers.length),
              height: HEIGHT,
              left: [jobrunnerMetric('backlog', { worker }, { ...max, label: 'backlog (messages)' })],
              right: [jobrunnerMetric('desired', { worker }, { ...max, label: 'desired (tasks)' })],
              leftYAxis: { min: 0, showUnits: false },
              rightYAxis: { min: 0, showUnits: false },
            }),
        ),
      );
    }

    this.dashboard.addWidgets(
      new cloudwatch.TextWidget({ markdown: '## Dead letters and functions', width: FULL, height: 1 }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Dead-letter queues: messages visible',
        width: FULL,
        height: HEIGHT,
        left: Object.entries(props.deadLetterQueues).map(([name, queue]) =>
          queue.metricApproximateNumberOfMessagesVisible({ ...max, label: name }),
        ),
        leftYAxis: { min: 0, showUnits: false },
      }),
    );
    const functions = Object.entries(props.functions);
    this.dashboard.addWidgets(
      ...functions.map(
        ([name, fn]) =>
          new cloudwatch.GraphWidget({
            title: `${name}: errors, throttles, duration`,
            width: half(functions.length),
            height: HEIGHT,
            left: [fn.metricErrors({ ...sum, label: 'errors' }), fn.metricThrottles({ ...sum, label: 'throttles' })],
            right: [fn.metricDuration({ statistic: cloudwatch.Stats.p(95), period, label: 'duration p95 (ms)' })],
            leftYAxis: { min: 0, showUnits: false },
            rightYAxis: { min: 0, showUnits: false },
          }),
      ),
    );
  }
}
