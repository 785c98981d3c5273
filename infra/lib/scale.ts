// The scale unit: once a minute an EventBridge rule invokes the scaler, which matches each
// worker service's desiredCount to its queue's backlog. It may read only the worker queues'
// attributes and describe/update only the worker services.

import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { WorkerProps } from './config';
import { type FunctionOptions, JobRunnerFunction } from './function';

/** Tuning of the scaler. */
export interface ScalerOptions {
  /**
   * Reserve one concurrent execution so two scaler runs never decide at once. Needs an account
   * whose unreserved concurrency stays at 100 or more (new accounts with a limit of 10 cannot
   * reserve any); without it, a late run is still dropped after a minute.
   * @default true
   */
  readonly reserveConcurrency?: boolean;
  /** Shorter than the one-minute tick, so runs do not overlap. @default 55 seconds */
  readonly timeout?: Duration;
}

export interface ScalerProps extends ScalerOptions {
  readonly config: string;
  readonly functionOptions?: FunctionOptions;
  readonly workers: Record<string, WorkerProps>;
}

export class Scaler extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  /** The one-minute tick. */
  readonly tick: events.Rule;

  constructor(scope: Construct, id: string, props: ScalerProps) {
    super(scope, id);
    const fn = new JobRunnerFunction(this, 'Scaler', {
      ...props.functionOptions,
      binaryName: 'scaler',
      description: 'jobrunner scaler: worker services follow their SQS backlog',
      config: props.config,
      timeout: props.timeout ?? Duration.seconds(55),
      reservedConcurrentExecutions: (props.reserveConcurrency ?? true) ? 1 : undefined,
    });
    this.function = fn.function;
    this.role = fn.role;
    // A tick that could not run within a minute is superseded by the next one: no retries.
    this.function.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(1) });

    this.tick = new events.Rule(this, 'Tick', {
      description: 'jobrunner: scaler tick',
      schedule: events.Schedule.rate(Duration.minutes(1)),
    });
    this.tick.addTarget(
      new eventsTargets.LambdaFunction(this.function, { retryAttempts: 0, maxEventAge: Duration.minutes(1) }),
    );

    const workers = Object.values(props.workers);
    for (const w of workers) w.queue.grant(this.role, 'sqs:GetQueueAttributes');
    if (workers.length) {
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['ecs:DescribeServices', 'ecs:UpdateService'],
          resources: workers.map((w) => w.service.serviceArn),
        }),
      );
    }
  }
}
