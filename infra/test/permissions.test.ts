// Least privilege: what each function's role may do, and on what.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import * as iam from 'aws-cdk-lib/aws-iam';
import { STATE_ACCESS, STATE_ACTIONS, STATE_KEY_PREFIXES } from '../lib';
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

  test('launcher: run, list, stop, describe and tag tasks; pass task roles; consume and re-send to its buffer; its ledger items; publish', () => {
    assert.deepEqual(
      [...actionsOf(example.json, launcher)].sort(),
      [
        'dynamodb:GetItem', 'dynamodb:PutItem',
        'ecs:DescribeTasks', 'ecs:ListTasks', 'ecs:RunTask', 'ecs:StopTask', 'ecs:TagResource', 'iam:PassRole',
        'kms:Decrypt', 'kms:GenerateDataKey*',
        'logs:CreateLogStream', 'logs:PutLogEvents',
        'sns:Publish',
        'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage',
        'sqs:SendMessage',
      ].sort(),
    );
  });

  test('scaler: queue attributes, describe/update services, read their tasks\' protection, its state', () => {
    assert.deepEqual(
      [...actionsOf(example.json, scaler)].sort(),
      [
        'dynamodb:GetItem', 'dynamodb:PutItem',
        'ecs:DescribeServices', 'ecs:GetTaskProtection', 'ecs:ListTasks', 'ecs:UpdateService', 'logs:CreateLogStream', 'logs:PutLogEvents', 'sqs:GetQueueAttributes',
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
    const launcherRole = functionRole(existing.json, 'jobrunner launcher');
    for (const action of ['ecs:StopTask', 'ecs:DescribeTasks', 'ecs:ListTasks']) {
      const found = statementsWith(existing.json, action)
        .filter((s) => s.roles.includes(launcherRole))
        .map((s) => s.statement);
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
    assert.equal(found.length, 3, 'launcher, scaler and tracker');
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

  test('only the calls the adapters make: GetItem and PutItem', () => {
    // Every DynamoDB call the functions' adapters make (the state store, and whatever else talks
    // to DynamoDB). `ledger_reader.rs` is the CLI's read side: grantOperator covers it (below).
    const dir = path.join(REPO_ROOT, 'crates', 'aws', 'src');
    const files = fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.rs'));
    const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
    const sources = files
      .filter((f) => f !== 'ledger_reader.rs')
      .map(read)
      .filter((s) => s.includes('aws_sdk_dynamodb'));
    const operatorCalls = [...new Set([...read('ledger_reader.rs').matchAll(/\.(get_item|put_item|update_item|query|scan|delete_item)\(\)/g)].map((m) => m[1]))].sort();
    // Its single items come through the state store (GetItem, counted above); it queries the index itself.
    assert.deepEqual(operatorCalls, ['query'], 'the CLI reads other DynamoDB operations: grant them in grantOperator');
    assert.ok(sources.length > 0, 'crates/aws/src: no DynamoDB adapter found');
    const calls = [
      ...new Set(
        sources.flatMap((s) =>
          [...s.matchAll(/\.(get_item|put_item|update_item|query|scan|delete_item|batch_\w+|transact_\w+)\(\)/g)].map((m) => m[1]),
        ),
      ),
    ].sort();
    assert.deepEqual(calls, ['get_item', 'put_item'], 'the adapters call other DynamoDB operations: grant them in lib/state.ts');
    assert.deepEqual(STATE_ACTIONS, ['dynamodb:GetItem', 'dynamodb:PutItem']);
    for (const json of [example.json, existing.json]) {
      for (const fn of ['jobrunner launcher', 'jobrunner scaler', 'jobrunner tracker']) {
        const [statement, ...more] = dynamo(json, fn);
        assert.deepEqual(more, [], `${fn}: one DynamoDB statement`);
        assert.deepEqual(asArray(statement.Action).sort(), ['dynamodb:GetItem', 'dynamodb:PutItem']);
      }
    }
  });

  test('each function only its own items: dynamodb:LeadingKeys on its key prefixes', () => {
    const expected: [string, string[]][] = [
      ['jobrunner launcher', ['run/*', 'slots/*', 'object/*', 'schedule/*']],
      ['jobrunner tracker', ['run/*', 'slots/*', 'schedule/*', 'alert/*']],
      ['jobrunner scaler', ['scaler#*']],
    ];
    for (const json of [example.json, existing.json]) {
      for (const [fn, keys] of expected) {
        const [statement] = dynamo(json, fn);
        assert.deepEqual(statement.Condition, { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': keys } }, fn);
      }
    }
  });

  test('the prefixes are the keys the functions write', () => {
    const read = (...p: string[]) => fs.readFileSync(path.join(REPO_ROOT, 'crates', 'core', 'src', ...p), 'utf8');
    const scaler = read('scaler.rs');
    const tracker = read('tracker.rs');
    const ledger = read('ledger', 'keys.rs');
    const scalerKey = /pub fn state_key\(worker: &str\) -> String \{\s*format!\("([^"{]*)\{worker\}"\)/.exec(scaler);
    const trackerKey = /pub const DEDUPE_KEY_PREFIX: &str = "([^"]*)";/.exec(tracker);
    assert.ok(scalerKey, "crates/core/src/scaler.rs: state_key's format changed; update STATE_KEY_PREFIXES and this test");
    assert.ok(trackerKey, 'crates/core/src/tracker.rs: DEDUPE_KEY_PREFIX changed; update STATE_KEY_PREFIXES and this test');
    // The ledger's prefixes: every `pub const X_PREFIX: &str = "…";` of keys.rs, by kind.
    const ledgerKeys = Object.fromEntries(
      [...ledger.matchAll(/pub const ([A-Z_]+)_PREFIX: &str = "([^"]*)";/g)].map((m) => [m[1].toLowerCase(), m[2]]),
    );
    assert.deepEqual(
      Object.keys(ledgerKeys).sort(),
      ['object', 'run', 'schedule', 'slots'],
      'crates/core/src/ledger/keys.rs has other key prefixes: name them in STATE_KEY_PREFIXES and grant them in STATE_ACCESS',
    );
    assert.deepEqual(STATE_KEY_PREFIXES, { ...ledgerKeys, alert: trackerKey[1], scaler: scalerKey[1] });
    // No prefix is a prefix of another, so a grant of one kind never reaches another kind's items.
    const all = Object.values(STATE_KEY_PREFIXES);
    for (const a of all) for (const b of all) if (a !== b) assert.ok(!b.startsWith(a), `${a} is a prefix of ${b}`);
  });

  test('the listing index is the one the ledger queries', () => {
    // The index's name is the ledger's; its attribute names are the state items' (core's `action::item`).
    const ledger = ['ledger/keys.rs', 'action.rs']
      .map((f) => fs.readFileSync(path.join(REPO_ROOT, 'crates', 'core', 'src', f), 'utf8'))
      .join('\n');
    const constant = (name: string) => new RegExp(`pub const ${name}: &str = "([^"]*)";`).exec(ledger)?.[1];
    assert.deepEqual(
      { name: constant('LIST_INDEX'), partitionKey: constant('LIST_PK'), sortKey: constant('LIST_SK') },
      { name: 'runs-by-day', partitionKey: 'list_pk', sortKey: 'list_sk' },
    );
    const [[, table]] = Object.entries(existing.json.Resources).filter(([, r]: any) => r.Type === 'AWS::DynamoDB::Table') as any;
    const [index] = table.Properties.GlobalSecondaryIndexes;
    assert.equal(index.IndexName, constant('LIST_INDEX'));
    assert.deepEqual(index.KeySchema.map((k: any) => k.AttributeName), [constant('LIST_PK'), constant('LIST_SK')]);
  });

  test('STATE_ACCESS names only known kinds', () => {
    for (const [fn, kinds] of Object.entries(STATE_ACCESS)) {
      for (const k of kinds) assert.ok(k in STATE_KEY_PREFIXES, `${fn}: ${k}`);
    }
  });
});

describe('launcher queue permissions', () => {
  test('SendMessage only on its own buffer (waiting events) and its dead-letter queue (on-failure destination)', () => {
    const launcher = functionRole(existing.json, 'jobrunner launcher');
    const found = statementsWith(existing.json, 'sqs:SendMessage').filter((s) => s.roles.includes(launcher));
    const queues = found.flatMap((s) => asArray<any>(s.statement.Resource)).map((r) => r['Fn::GetAtt'][0]).sort();
    assert.equal(queues.length, 2, JSON.stringify(queues));
    assert.match(queues[0], /^JobRunnerLaunchBufferDeadLetterQueue/);
    assert.match(queues[1], /^JobRunnerLaunchBufferQueue/);
    // On its buffer: consume (the event source mapping) and SendMessage (re-send), nothing more.
    const onBuffer = policyStatements(existing.json)
      .filter((s) => s.roles.includes(launcher))
      .filter((s) => asArray<any>(s.statement.Resource).some((r) => /^JobRunnerLaunchBufferQueue/.test(r['Fn::GetAtt']?.[0] ?? '')))
      .flatMap((s) => asArray<string>(s.statement.Action));
    assert.deepEqual([...new Set(onBuffer)].sort(), [
      'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage', 'sqs:SendMessage',
    ]);
    // and no other role may send to it but EventBridge.
    const senders = statementsWith(existing.json, 'sqs:SendMessage').filter((s) =>
      asArray<any>(s.statement.Resource).some((r) => /^JobRunnerLaunchBufferQueue/.test(r['Fn::GetAtt']?.[0] ?? '')),
    );
    assert.deepEqual(senders.flatMap((s) => s.roles), [launcher]);
  });

  test('its buffer is a standard queue that takes per-message delays', () => {
    const [[, queue]] = Object.entries(existing.json.Resources).filter(
      ([k, r]: any) => r.Type === 'AWS::SQS::Queue' && /^JobRunnerLaunchBufferQueue/.test(k),
    ) as any;
    assert.equal(queue.Properties.FifoQueue, undefined, 'FIFO queues take no per-message DelaySeconds');
    assert.equal(queue.Properties.DelaySeconds, undefined, 'no queue-wide delay on new events');
  });
});

describe('alert permissions', () => {
  test('Publish only on the alert topic, by the tracker and the launcher; the key only for that topic', () => {
    const found = statementsWith(example.json, 'sns:Publish');
    assert.deepEqual(
      found.flatMap((s) => s.roles).sort(),
      [functionRole(example.json, 'jobrunner launcher'), functionRole(example.json, 'jobrunner tracker')].sort(),
    );
    for (const { statement } of found) assert.deepEqual(statement.Resource, { Ref: id('JobRunnerAlertTopic') });
    const keys = statementsWith(example.json, 'kms:Decrypt');
    assert.equal(keys.length, 2);
    for (const { statement } of keys) {
      assert.deepEqual(statement.Resource, { 'Fn::GetAtt': [id('JobRunnerAlertTopicKey'), 'Arn'] });
      assert.deepEqual(asArray(statement.Action).sort(), ['kms:Decrypt', 'kms:GenerateDataKey*']);
    }
  });

  test('the launcher publishes only when alerts exist', () => {
    const e = existingResources((p) => ({ ...p, alerts: undefined }));
    const launcher = functionRole(e.json, 'jobrunner launcher');
    const actions = [...actionsOf(e.json, launcher)];
    assert.ok(!actions.some((a) => a.startsWith('sns:') || a.startsWith('kms:')), actions.join());
    assert.deepEqual(statementsWith(e.json, 'sns:Publish'), []);
    // The launcher still keeps its ledger items.
    assert.ok(actions.includes('dynamodb:PutItem'));
  });

  test('DescribeTaskDefinition is the tracker\'s only unscoped action', () => {
    const tracker = functionRole(example.json, 'jobrunner tracker');
    const unscoped = policyStatements(example.json).filter(
      ({ roles, statement }) => roles.includes(tracker) && asArray(statement.Resource).includes('*'),
    );
    assert.deepEqual(unscoped.map((s) => s.statement.Action), ['ecs:DescribeTaskDefinition']);
  });
});

describe('operator permissions (grantOperator)', () => {
  const withOperator = () => {
    const e = existingResources(undefined, (jobRunner, stack) => {
      jobRunner.grantOperator(new iam.Role(stack, 'Operator', { assumedBy: new iam.AccountRootPrincipal() }));
    });
    const json = e.json;
    const role = Object.keys(json.Resources).find((k) => /^Operator[0-9A-F]{8}$/.test(k))!;
    const statements = policyStatements(json).filter((s) => s.roles.includes(role)).map((s) => s.statement);
    return { e, json, statements };
  };
  const { e, statements } = withOperator();

  const table = Object.keys(e.json.Resources).find((k) => /^JobRunnerStateTable[0-9A-F]{8}$/.test(k))!;

  test('exactly what run, status, dlq, backfill and submit call', () => {
    assert.deepEqual([...new Set(statements.flatMap((s) => asArray<string>(s.Action)))].sort(), [
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'ecs:DescribeServices',
      'ecs:DescribeTasks',
      'ecs:StopTask',
      's3:GetObject',
      's3:GetObjectVersion',
      's3:ListBucket',
      's3:ListBucketVersions',
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ListMessageMoveTasks',
      'sqs:ReceiveMessage',
      'sqs:SendMessage',
      'sqs:StartMessageMoveTask',
    ]);
    const sends = statements.filter((s) => asArray(s.Action).includes('sqs:SendMessage'));
    assert.deepEqual(
      sends.flatMap((s) => asArray<any>(s.Resource)).map((r) => r['Fn::GetAtt'][0].replace(/[0-9A-F]{8}$/, '')).sort(),
      ['JobRunnerLaunchBufferQueue', 'JobRunnerTrackBufferQueue'],
      'only the launcher\'s queue (reruns, submits, redrives) and the tracker\'s (redrives)',
    );
  });

  test('dead letters are read, deleted and moved only in the two dead-letter queues', () => {
    const [consume, ...more] = statements.filter((s) => asArray(s.Action).includes('sqs:ReceiveMessage'));
    assert.deepEqual(more, []);
    assert.deepEqual(
      asArray<any>(consume.Resource).map((r) => r['Fn::GetAtt'][0].replace(/[0-9A-F]{8}$/, '')).sort(),
      ['JobRunnerLaunchBufferDeadLetterQueue', 'JobRunnerTrackBufferDeadLetterQueue'],
    );
  });

  test('slot records are only read', () => {
    const slots = statements.filter((s) => JSON.stringify(s.Condition ?? {}).includes('slots/*'));
    assert.equal(slots.length, 1);
    assert.deepEqual(asArray(slots[0].Action), ['dynamodb:GetItem']);
  });

  test('Query only on the runs-by-day index', () => {
    const [query, ...more] = statements.filter((s) => asArray(s.Action).includes('dynamodb:Query'));
    assert.deepEqual(more, []);
    assert.deepEqual(asArray(query.Action), ['dynamodb:Query']);
    assert.deepEqual(query.Resource, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [table, 'Arn'] }, '/index/runs-by-day']] });
  });

  test('GetItem and PutItem only on runs and the latest run of a key', () => {
    const [items, ...more] = statements.filter((s) => asArray(s.Action).includes('dynamodb:PutItem'));
    assert.deepEqual(more, []);
    assert.deepEqual(asArray(items.Action).sort(), ['dynamodb:GetItem', 'dynamodb:PutItem']);
    assert.deepEqual(items.Resource, { 'Fn::GetAtt': [table, 'Arn'] });
    assert.deepEqual(items.Condition, { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['run/*', 'object/*'] } });
  });

  test('StopTask and DescribeTasks only on the tasks of the jobs\' clusters', () => {
    const [stop, ...more] = statements.filter((s) => asArray(s.Action).includes('ecs:StopTask'));
    assert.deepEqual(more, []);
    assert.deepEqual(asArray(stop.Action).sort(), ['ecs:DescribeTasks', 'ecs:StopTask']);
    assert.deepEqual(asArray(stop.Resource).sort(), [
      'arn:aws:ecs:eu-central-1:123456789012:task/batch/*',
      'arn:aws:ecs:eu-central-1:123456789012:task/jobs/*',
    ]);
    assert.deepEqual(stop.Condition, {
      ArnEquals: {
        'ecs:cluster': ['arn:aws:ecs:eu-central-1:123456789012:cluster/jobs', 'arn:aws:ecs:eu-central-1:123456789012:cluster/batch'],
      },
    });
  });

  test('without jobs there is no task to stop and no bucket to list: the ledger, the queues and the services', () => {
    const bare = existingResources(
      (p) => ({ defaults: p.defaults, workers: p.workers }),
      (jobRunner, stack) => jobRunner.grantOperator(new iam.User(stack, 'Person')),
    );
    const userId = Object.keys(bare.json.Resources).find((k) => /^Person[0-9A-F]{8}$/.test(k))!;
    const actions = resourcesOfPolicy(bare.json, userId);
    assert.deepEqual([...new Set(actions)].sort(), [
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'ecs:DescribeServices',
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ListMessageMoveTasks',
      'sqs:ReceiveMessage',
      'sqs:SendMessage',
      'sqs:StartMessageMoveTask',
    ]);
  });
});

/** The actions of the policies attached to a user. */
function resourcesOfPolicy(json: Record<string, any>, user: string): string[] {
  return Object.values(json.Resources as Record<string, any>)
    .filter((r) => r.Type === 'AWS::IAM::Policy' && (r.Properties.Users ?? []).some((u: any) => u.Ref === user))
    .flatMap((r) => r.Properties.PolicyDocument.Statement.flatMap((s: any) => asArray<string>(s.Action)));
}

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
