// The scaler's permissions per worker mode: service mode reads its tasks' scale-in protection
// (in the service's cluster only); jobs mode runs exactly the worker's task-definition family in
// its cluster and passes exactly its roles. Plus the config document of a jobs-mode worker.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Duration } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { existingResources } from './fixtures';
import { asArray, deployedConfigs, functionRole, statementsWith } from './support';

const existing = existingResources();

/** The fixture with a jobs-mode worker `thumbs` (its own task definition) next to `orders`. */
const jobs = (() => {
  let taskDefinition: ecs.FargateTaskDefinition | undefined;
  const e = existingResources((p) => {
    const stack = p.defaults.cluster.stack;
    taskDefinition = new ecs.FargateTaskDefinition(stack, 'ThumbWorker', { family: 'thumb-worker', cpu: 256, memoryLimitMiB: 512 });
    taskDefinition.addContainer('app', { image: ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/busybox:stable') });
    const queue = sqs.Queue.fromQueueArn(stack, 'ThumbQueue', 'arn:aws:sqs:eu-central-1:123456789012:thumbs');
    return {
      ...p,
      workers: {
        ...p.workers,
        thumbs: {
          mode: 'jobs',
          cluster: p.defaults.cluster,
          taskDefinition,
          container: 'app',
          command: ['thumbs', '--fast'],
          idleExit: Duration.seconds(90),
          queue,
          messagesPerTask: 5,
          maxTasks: 20,
        },
      },
    };
  });
  return { ...e, taskDefinition: taskDefinition! };
})();

const scalerStatements = (json: Record<string, any>, action: string) => {
  const scaler = functionRole(json, 'jobrunner scaler');
  return statementsWith(json, action)
    .filter((s) => s.roles.includes(scaler))
    .map((s) => s.statement);
};

describe('scaler, service mode', () => {
  test('GetTaskProtection only on the tasks of the worker service cluster', () => {
    const found = scalerStatements(existing.json, 'ecs:GetTaskProtection');
    assert.equal(found.length, 1);
    assert.deepEqual(asArray(found[0].Action), ['ecs:GetTaskProtection']);
    assert.equal(found[0].Resource, 'arn:aws:ecs:eu-central-1:123456789012:task/jobs/*');
    assert.deepEqual(found[0].Condition, { ArnEquals: { 'ecs:cluster': 'arn:aws:ecs:eu-central-1:123456789012:cluster/jobs' } });
  });

  test('ListTasks conditioned on the cluster; no RunTask or PassRole', () => {
    const [list] = scalerStatements(existing.json, 'ecs:ListTasks');
    assert.deepEqual(list.Condition, { ArnEquals: { 'ecs:cluster': ['arn:aws:ecs:eu-central-1:123456789012:cluster/jobs'] } });
    assert.deepEqual(scalerStatements(existing.json, 'ecs:RunTask'), []);
    assert.deepEqual(scalerStatements(existing.json, 'iam:PassRole'), []);
  });
});

describe('scaler, jobs mode', () => {
  test('RunTask only on the worker family, in its cluster', () => {
    const found = scalerStatements(jobs.json, 'ecs:RunTask');
    assert.equal(found.length, 1);
    assert.deepEqual(asArray(found[0].Action), ['ecs:RunTask']);
    assert.equal(found[0].Resource, 'arn:aws:ecs:eu-central-1:123456789012:task-definition/thumb-worker:*');
    assert.deepEqual(found[0].Condition, { ArnEquals: { 'ecs:cluster': 'arn:aws:ecs:eu-central-1:123456789012:cluster/jobs' } });
  });

  test('PassRole only on its task and execution roles, to ECS tasks', () => {
    const found = scalerStatements(jobs.json, 'iam:PassRole');
    assert.equal(found.length, 1);
    const resources = asArray<any>(found[0].Resource);
    assert.ok(!resources.includes('*'));
    const stack = jobs.stack;
    const roles = [jobs.taskDefinition.taskRole, jobs.taskDefinition.executionRole]
      .filter((r) => r !== undefined)
      .map((r) => stack.resolve(r.roleArn));
    assert.deepEqual(
      resources.map((r) => JSON.stringify(r)).sort(),
      roles.map((r) => JSON.stringify(r)).sort(),
    );
    assert.deepEqual(found[0].Condition, { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } });
  });

  test('TagResource only when RunTask creates the task; ListTasks once per cluster', () => {
    const [tag] = scalerStatements(jobs.json, 'ecs:TagResource');
    assert.equal(tag.Resource, 'arn:aws:ecs:eu-central-1:123456789012:task/jobs/*');
    assert.deepEqual(tag.Condition, { StringEquals: { 'ecs:CreateAction': 'RunTask' } });
    const lists = scalerStatements(jobs.json, 'ecs:ListTasks');
    assert.equal(lists.length, 1, 'the service worker and the jobs worker share the cluster');
  });

  test('the config document carries the jobs-mode worker', () => {
    const config = JSON.parse(Object.values(deployedConfigs(jobs.json))[0]!);
    assert.deepEqual(config.workers.thumbs, {
      mode: 'jobs',
      cluster: 'arn:aws:ecs:eu-central-1:123456789012:cluster/jobs',
      task_definition: 'thumb-worker',
      container: 'app',
      command: ['thumbs', '--fast'],
      idle_exit: '90s',
      queue_url: config.workers.thumbs.queue_url,
      messages_per_task: 5,
      min_tasks: 0,
      max_tasks: 20,
      scale_in_after_seconds: 300,
    });
  });

  test("cdk-nag finds nothing unacknowledged in the construct (the fixture's own task definitions aside)", () => {
    const violations = new AwsSolutionsChecks(jobs.stack)
      .validateScope(jobs.stack)
      .violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}`))
      .filter((v) => v.includes('/JobRunner/'));
    assert.deepEqual(violations, []);
  });
});
