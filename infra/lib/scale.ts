// The scale unit: once a minute an EventBridge rule invokes the scaler, which matches each
// worker service's desiredCount to its queue's backlog, or launches a jobs-mode worker's tasks.
// It may read only the worker queues' attributes, describe/update only the worker services and
// read their tasks' scale-in protection, and run only the jobs-mode workers' task definitions
// in their clusters.

import { Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { JobsWorkerProps, ServiceWorkerProps, WorkerProps } from './config';
import { acknowledgeWildcardResource } from './nag';
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
    const services = workers.filter((w): w is ServiceWorkerProps => w.mode !== 'jobs');
    const jobs = workers.filter((w): w is JobsWorkerProps => w.mode === 'jobs');
    if (services.length) this.grantServices(services);
    if (jobs.length) this.grantJobs(jobs);
  }

  /**
   * Service mode: describe/update the worker services, and read their tasks' scale-in
   * protection (ListTasks by serviceName, GetTaskProtection) before scaling in.
   */
  private grantServices(services: ServiceWorkerProps[]): void {
    const stack = Stack.of(this);
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ecs:DescribeServices', 'ecs:UpdateService'],
        resources: services.map((w) => w.service.serviceArn),
      }),
    );
    const clusters = new Map(services.map((w) => [w.service.cluster.clusterArn, w.service.cluster]));
    for (const cluster of clusters.values()) {
      const tasks = stack.formatArn({ service: 'ecs', resource: 'task', resourceName: `${cluster.clusterName}/*` });
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['ecs:GetTaskProtection'],
          resources: [tasks],
          conditions: { ArnEquals: { 'ecs:cluster': cluster.clusterArn } },
        }),
      );
      acknowledgeWildcardResource(
        this.role,
        tasks,
        "GetTaskProtection reads the scale-in protection of the worker services' tasks, whose IDs are unknown until ECS starts them; one configured cluster, with the ecs:cluster condition.",
      );
    }
    this.grantListTasks([...clusters.values()]);
  }

  /**
   * Jobs mode: RunTask on exactly each worker's task-definition family (every revision) in its
   * cluster, tagging only at creation, ListTasks in those clusters, and PassRole on exactly the
   * task definitions' task and execution roles.
   */
  private grantJobs(jobs: JobsWorkerProps[]): void {
    const stack = Stack.of(this);
    const byCluster = new Map<string, { cluster: JobsWorkerProps['cluster']; families: Set<string> }>();
    const passRoles = new Map<string, iam.IRole>();
    for (const w of jobs) {
      const entry = byCluster.get(w.cluster.clusterArn) ?? { cluster: w.cluster, families: new Set<string>() };
      entry.families.add(w.taskDefinition.family);
      byCluster.set(w.cluster.clusterArn, entry);
      for (const role of [w.taskDefinition.taskRole, w.taskDefinition.executionRole]) {
        if (role) passRoles.set(role.node.path, role);
      }
    }
    for (const { cluster, families } of byCluster.values()) {
      const onCluster = { ArnEquals: { 'ecs:cluster': cluster.clusterArn } };
      const taskDefinitions = [...families].sort().map((family) =>
        stack.formatArn({ service: 'ecs', resource: 'task-definition', resourceName: `${family}:*` }),
      );
      const tasks = stack.formatArn({ service: 'ecs', resource: 'task', resourceName: `${cluster.clusterName}/*` });
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: ['ecs:RunTask'], resources: taskDefinitions, conditions: onCluster }),
      );
      // RunTask tags each task (jobrunner:worker) at creation.
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['ecs:TagResource'],
          resources: [tasks],
          conditions: { StringEquals: { 'ecs:CreateAction': 'RunTask' } },
        }),
      );
      for (const arn of taskDefinitions) {
        acknowledgeWildcardResource(
          this.role,
          arn,
          "RunTask on every revision (:*) of one jobs-mode worker's task-definition family, only in its cluster (ecs:cluster condition).",
        );
      }
      acknowledgeWildcardResource(
        this.role,
        tasks,
        "Tag the jobs-mode workers' tasks of one cluster at creation only (ecs:CreateAction=RunTask): task IDs are unknown until launch.",
      );
    }
    this.grantListTasks([...byCluster.values()].map((e) => e.cluster));
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

  /** ListTasks, which has no resource-level scope: only in these clusters (ecs:cluster). */
  private grantListTasks(clusters: JobsWorkerProps['cluster'][]): void {
    const arns = [...new Set(clusters.map((c) => c.clusterArn))];
    if (this.listTasksClusters.size === 0) {
      acknowledgeWildcardResource(
        this.role,
        '*',
        'ecs:ListTasks has no resource-level scope (AWS: resource "*"); the statement is limited to the worker clusters with the ecs:cluster condition.',
      );
    }
    const fresh = arns.filter((a) => !this.listTasksClusters.has(a));
    for (const a of fresh) this.listTasksClusters.add(a);
    if (!fresh.length) return;
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ecs:ListTasks'],
        resources: ['*'],
        conditions: { ArnEquals: { 'ecs:cluster': fresh } },
      }),
    );
  }

  private readonly listTasksClusters = new Set<string>();
}
