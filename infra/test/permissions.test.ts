// Least privilege: what each function's role may do, and on what.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { STATE_ACTIONS, STATE_KEY_PREFIXES } from '../lib';
import { existingResources } from './fixtures';
import { asArray, functionRole, policyStatements, REPO_ROOT, statementsWith, synthExample } from './support';

const example = synthExample();
const existing = existingResources();

const ARN = (service: string, resource: string) => ({
  'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:${service}:`, { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, resource]],
});

/** The set of actions a role's statements allow. */
function actionsOf(json: Record<string, any>, role: string): Set<string> {
  const out = new Set<string>();
  for (const { roles, statement } of policyStatements(json)) {
    if (roles.includes(role) && statement.Effect === 'Allow') for (const a of asArray<string>(statement.Action)) out.add(a);
  }
  return out;
}

describe('each function may do exactly its job', () => {
  const launcher = functionRole(example.json, 'jobrunner launcher');
  const scaler = functionRole(example.json, 'jobrunner scaler');
  const tracker = functionRole(example.json, 'jobrunner tracker');

  test('launcher: run, list, stop, describe and tag tasks; pass task roles; consume its buffer', () => {
    assert.deepEqual(
      [...actionsOf(example.json, launcher)].sort(),
      [
        'ecs:DescribeTasks', 'ecs:ListTasks', 'ecs:RunTask', 'ecs:StopTask', 'ecs:TagResource', 'iam:PassRole',
        'logs:CreateLogStream', 'logs:PutLogEvents',
        'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage',
        'sqs:SendMessage',
      ].sort(),
    );
  });

  test('scaler: queue attributes, describe/update services, its state', () => {
    assert.deepEqual(
      [...actionsOf(example.json, scaler)].sort(),
      [
        'dynamodb:GetItem', 'dynamodb:PutItem',
        'ecs:DescribeServices', 'ecs:UpdateService', 'logs:CreateLogStream', 'logs:PutLogEvents', 'sqs:GetQueueAttributes',
      ].sort(),
    );
  });

  test('tracker: publish (with the topic key), describe task definitions, its state, consume its buffer', () => {
    assert.deepEqual(
      [...actionsOf(example.json, tracker)].sort(),
      [
        'dynamodb:GetItem', 'dynamodb:PutItem',
        'ecs:DescribeTaskDefinition', 'kms:Decrypt', 'kms:GenerateDataKey*', 'logs:CreateLogStream', 'logs:PutLogEvents',
        'sns:Publish',
        'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage',
      ].sort(),
    );
  });

  test('no function role has an AWS managed policy', () => {
    for (const role of [launcher, scaler, tracker]) {
      assert.equal(example.json.Resources[role].Properties.ManagedPolicyArns, undefined, role);
    }
  });
});

describe('launch permissions', () => {
  test('RunTask only on the configured families, only in their cluster', () => {
    const statements = statementsWith(existing.json, 'ecs:RunTask').map((s) => s.statement);
    assert.deepEqual(
      statements.map((s) => ({ Resource: s.Resource, Condition: s.Condition })),
      [
        {
          Resource: 'arn:aws:ecs:eu-central-1:123456789012:task-definition/thumbnails:*',
          Condition: { ArnEquals: { 'ecs:cluster': 'arn:aws:ecs:eu-central-1:123456789012:cluster/jobs' } },
        },
        {
          Resource: 'arn:aws:ecs:eu-central-1:123456789012:task-definition/report:*',
          Condition: { ArnEquals: { 'ecs:cluster': 'arn:aws:ecs:eu-central-1:123456789012:cluster/batch' } },
        },
      ],
    );
    const [example_] = statementsWith(example.json, 'ecs:RunTask').map((s) => s.statement);
    assert.deepEqual(example_.Resource, ARN('ecs', ':task-definition/jobrunner-example-job:*'));
    assert.deepEqual(example_.Condition, { ArnEquals: { 'ecs:cluster': { 'Fn::GetAtt': [clusterId(), 'Arn'] } } });
  });

  test('PassRole only on the jobs\' task and execution roles, only to ECS tasks', () => {
    const [{ statement }] = statementsWith(example.json, 'iam:PassRole');
    assert.deepEqual(statement.Condition, { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } });
    const roles = asArray<any>(statement.Resource).map((r) => r['Fn::GetAtt'][0]).sort();
    assert.deepEqual(roles, [id('JobTaskExecutionRole'), id('JobTaskTaskRole')].sort());
    assert.equal(statementsWith(example.json, 'iam:PassRole').length, 1);
  });

  test('StopTask, DescribeTasks and ListTasks carry the ecs:cluster condition', () => {
    for (const action of ['ecs:StopTask', 'ecs:DescribeTasks', 'ecs:ListTasks']) {
      const found = statementsWith(existing.json, action).map((s) => s.statement);
      assert.equal(found.length, 2, `${action}: one statement per cluster`);
      for (const s of found) assert.match(s.Condition.ArnEquals['ecs:cluster'], /^arn:aws:ecs:eu-central-1:123456789012:cluster\/(jobs|batch)$/);
    }
    const [stop] = statementsWith(existing.json, 'ecs:StopTask').map((s) => s.statement);
    assert.equal(stop.Resource, 'arn:aws:ecs:eu-central-1:123456789012:task/jobs/*');
  });

  test('TagResource only on tasks being created by RunTask', () => {
    const found = statementsWith(existing.json, 'ecs:TagResource').map((s) => s.statement);
    assert.ok(found.length > 0);
    for (const s of found) {
      assert.deepEqual(asArray(s.Action), ['ecs:TagResource']);
      assert.deepEqual(s.Condition, { StringEquals: { 'ecs:CreateAction': 'RunTask' } });
    }
    assert.deepEqual(found.flatMap((s) => asArray(s.Resource)).sort(), [
      'arn:aws:ecs:eu-central-1:123456789012:task/batch/*',
      'arn:aws:ecs:eu-central-1:123456789012:task/jobs/*',
    ]);
  });
});

describe('scale permissions', () => {
  test('DescribeServices/UpdateService only on the worker services', () => {
    const found = statementsWith(existing.json, 'ecs:UpdateService').map((s) => s.statement);
    assert.equal(found.length, 1);
    assert.deepEqual([...asArray(found[0].Action)].sort(), ['ecs:DescribeServices', 'ecs:UpdateService']);
    assert.equal(found[0].Resource, 'arn:aws:ecs:eu-central-1:123456789012:service/jobs/order-workers');
    const [ex] = statementsWith(example.json, 'ecs:UpdateService').map((s) => s.statement);
    assert.deepEqual(ex.Resource, { Ref: id('WorkersService') });
  });

  test('GetQueueAttributes for the scaler only on the worker queues', () => {
    const scaler = functionRole(existing.json, 'jobrunner scaler');
    const found = statementsWith(existing.json, 'sqs:GetQueueAttributes').filter((s) => s.roles.includes(scaler));
    assert.deepEqual(found.map((s) => [s.statement.Action, s.statement.Resource]), [
      ['sqs:GetQueueAttributes', 'arn:aws:sqs:eu-central-1:123456789012:orders'],
    ]);
  });

  test('DynamoDB only on the state table', () => {
    const table = id('JobRunnerStateTable');
    const found = policyStatements(example.json).filter(({ statement }) =>
      asArray<string>(statement.Action).some((a) => a.startsWith('dynamodb:')),
    );
    assert.equal(found.length, 2, 'scaler and tracker');
    for (const { statement } of found) assert.deepEqual(statement.Resource, { 'Fn::GetAtt': [table, 'Arn'] });
  });
});

describe('state permissions', () => {
  const dynamo = (json: Record<string, any>, description: string) => {
    const role = functionRole(json, description);
    return policyStatements(json)
      .filter(({ roles, statement }) => roles.includes(role) && asArray<string>(statement.Action).some((a) => a.startsWith('dynamodb:')))
      .map(({ statement }) => statement);
  };

  test('only the calls the state store makes: GetItem and PutItem', () => {
    const source = fs.readFileSync(path.join(REPO_ROOT, 'crates', 'aws', 'src', 'state_store.rs'), 'utf8');
    const calls = [...new Set([...source.matchAll(/\.(get_item|put_item|update_item|query|scan|delete_item|batch_\w+|transact_\w+)\(\)/g)].map((m) => m[1]))].sort();
    assert.deepEqual(calls, ['get_item', 'put_item'], 'the state store calls other DynamoDB operations: grant them in lib/state.ts');
    assert.deepEqual(STATE_ACTIONS, ['dynamodb:GetItem', 'dynamodb:PutItem']);
    for (const json of [example.json, existing.json]) {
      for (const fn of ['jobrunner scaler', 'jobrunner tracker']) {
        const [statement, ...more] = dynamo(json, fn);
        assert.deepEqual(more, [], `${fn}: one DynamoDB statement`);
        assert.deepEqual(asArray(statement.Action).sort(), ['dynamodb:GetItem', 'dynamodb:PutItem']);
      }
    }
  });

  test('each function only its own items: dynamodb:LeadingKeys on its key prefix', () => {
    for (const json of [example.json, existing.json]) {
      for (const [fn, prefix] of [['jobrunner scaler', 'scaler#'], ['jobrunner tracker', 'alert/']]) {
        const [statement] = dynamo(json, fn);
        assert.deepEqual(statement.Condition, { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${prefix}*`] } }, fn);
      }
    }
  });

  test('the prefixes are the keys the functions write', () => {
    const scaler = fs.readFileSync(path.join(REPO_ROOT, 'crates', 'core', 'src', 'scaler.rs'), 'utf8');
    const tracker = fs.readFileSync(path.join(REPO_ROOT, 'crates', 'core', 'src', 'tracker.rs'), 'utf8');
    const scalerKey = /pub fn state_key\(worker: &str\) -> String \{\s*format!\("([^"{]*)\{worker\}"\)/.exec(scaler);
    const trackerKey = /pub const DEDUPE_KEY_PREFIX: &str = "([^"]*)";/.exec(tracker);
    assert.ok(scalerKey, "crates/core/src/scaler.rs: state_key's format changed; update STATE_KEY_PREFIXES and this test");
    assert.ok(trackerKey, 'crates/core/src/tracker.rs: DEDUPE_KEY_PREFIX changed; update STATE_KEY_PREFIXES and this test');
    assert.deepEqual(STATE_KEY_PREFIXES, { scaler: scalerKey[1], tracker: trackerKey[1] });
    // Neither prefix is a prefix of the other, so neither function reaches the other's items.
    assert.ok(!scalerKey[1].startsWith(trackerKey[1]) && !trackerKey[1].startsWith(scalerKey[1]));
  });
});

describe('alert permissions', () => {
  test('Publish only on the alert topic; the key only for that topic', () => {
    const found = statementsWith(example.json, 'sns:Publish');
    assert.equal(found.length, 1);
    assert.deepEqual(found[0].statement.Resource, { Ref: id('JobRunnerAlertTopic') });
    const [kms] = statementsWith(example.json, 'kms:Decrypt');
    assert.deepEqual(kms.statement.Resource, { 'Fn::GetAtt': [id('JobRunnerAlertTopicKey'), 'Arn'] });
  });

  test('DescribeTaskDefinition is the tracker\'s only unscoped action', () => {
    const tracker = functionRole(example.json, 'jobrunner tracker');
    const unscoped = policyStatements(example.json).filter(
      ({ roles, statement }) => roles.includes(tracker) && asArray(statement.Resource).includes('*'),
    );
    assert.deepEqual(unscoped.map((s) => s.statement.Action), ['ecs:DescribeTaskDefinition']);
  });
});

describe('no wildcard resources where they matter', () => {
  for (const [name, json] of [['example', example.json], ['existing resources', existing.json]] as const) {
    test(`${name}: RunTask, PassRole, UpdateService and Publish never on "*"`, () => {
      for (const action of ['ecs:RunTask', 'iam:PassRole', 'ecs:UpdateService', 'sns:Publish', 'ecs:*', 'iam:*', 'sns:*']) {
        for (const { statement } of policyStatements(json)) {
          if (!asArray<string>(statement.Action).includes(action)) continue;
          assert.ok(!asArray(statement.Resource).includes('*'), `${action} on "*": ${JSON.stringify(statement)}`);
        }
      }
    });

    test(`${name}: the only "*" resources are ListTasks (cluster-conditioned) and DescribeTaskDefinition`, () => {
      const star = policyStatements(json)
        .filter(({ statement }) => statement.Effect === 'Allow' && asArray(statement.Resource).includes('*'))
        .map(({ statement }) => statement);
      for (const s of star) {
        const actions = asArray<string>(s.Action);
        if (actions.includes('ecs:ListTasks')) {
          assert.deepEqual(actions, ['ecs:ListTasks']);
          assert.ok(s.Condition?.ArnEquals?.['ecs:cluster'], 'ListTasks is limited by ecs:cluster');
        } else {
          assert.deepEqual(actions, ['ecs:DescribeTaskDefinition']);
        }
      }
    });
  }
});

function id(prefix: string): string {
  const found = Object.keys(example.json.Resources).filter((k) => new RegExp(`^${prefix}[0-9A-F]{8}$`).test(k));
  assert.equal(found.length, 1, `one resource named ${prefix}*: ${found.join(', ')}`);
  return found[0];
}

function clusterId(): string {
  const [found] = Object.entries(example.json.Resources).find(([, r]: any) => r.Type === 'AWS::ECS::Cluster')!;
  return found;
}
