// The launch unit: S3 rules → SQS buffer → launcher; EventBridge Scheduler → launcher.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { scheduleInput } from '../lib';
import { existingResources } from './fixtures';
import {
  asArray,
  cfnLintBinary,
  functionRole,
  policyStatements,
  resourcesOfType,
  statementsWith,
  synthExample,
} from './support';

const example = synthExample();
const existing = existingResources();

describe('launcher function', () => {
  test('is a Rust binary on arm64 / provided.al2023 with the config inline', () => {
    example.template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^jobrunner launcher'),
      Runtime: 'provided.al2023',
      Architectures: ['arm64'],
      Handler: 'bootstrap',
      Timeout: 30,
      MemorySize: 128,
      Environment: { Variables: { JOBRUNNER_CONFIG: Match.anyValue(), RUST_LOG: 'info' } },
      LoggingConfig: { LogGroup: Match.anyValue() },
    });
  });

  test('each function logs to its own log group with a retention period', () => {
    const fns = resourcesOfType(example.json, 'AWS::Lambda::Function').filter(([, r]) =>
      String(r.Properties.Description ?? '').startsWith('jobrunner '),
    );
    assert.equal(fns.length, 3);
    for (const [, fn] of fns) {
      const logGroup = example.json.Resources[fn.Properties.LoggingConfig.LogGroup.Ref];
      assert.equal(logGroup.Type, 'AWS::Logs::LogGroup');
      assert.equal(logGroup.Properties.RetentionInDays, 30);
    }
  });

  test('consumes its buffer with partial batch failures and a concurrency cap', () => {
    example.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: Match.stringLikeRegexp('Launch') },
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('LaunchBufferQueue'), 'Arn'] },
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 5 },
    });
  });

  test('failed scheduled (asynchronous) invocations go to the dead-letter queue', () => {
    example.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: Match.stringLikeRegexp('Launch') },
      MaximumRetryAttempts: 2,
      DestinationConfig: {
        OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('LaunchBufferDeadLetterQueue'), 'Arn'] } },
      },
    });
  });
});

describe('S3 → EventBridge → SQS buffer', () => {
  test('turns on EventBridge notifications of the trigger buckets', () => {
    existing.template.hasResourceProperties('Custom::S3BucketNotifications', {
      BucketName: 'uploads',
      NotificationConfiguration: { EventBridgeConfiguration: {} },
      Managed: false,
    });
    example.template.hasResourceProperties('Custom::S3BucketNotifications', {
      BucketName: { Ref: Match.stringLikeRegexp('^Uploads') },
      NotificationConfiguration: { EventBridgeConfiguration: {} },
    });
  });

  test('one rule per bucket filters Object Created events by bucket, prefix and suffix', () => {
    existing.template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: {
          bucket: { name: ['uploads'] },
          $or: [
            { object: { key: [{ wildcard: 'images/*.jpg' }] } },
            { object: { key: [{ prefix: 'raw/' }], size: [{ numeric: ['>=', 1, '<=', 1073741824] }] } },
          ],
        },
      },
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('LaunchBufferQueue'), 'Arn'] },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('LaunchBufferDeadLetterQueue'), 'Arn'] } },
          RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86400 },
        }),
      ],
    });
    example.template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: { bucket: { name: [{ Ref: Match.stringLikeRegexp('^Uploads') }] }, object: { key: [{ prefix: 'uploads/' }] } },
      },
    });
  });

  test('buffer queues are encrypted, TLS-only and drain into a dead-letter queue', () => {
    for (const [id, queue] of resourcesOfType(example.json, 'AWS::SQS::Queue')) {
      assert.equal(queue.Properties.SqsManagedSseEnabled, true, `${id} is encrypted`);
    }
    example.template.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      VisibilityTimeout: 180,
      RedrivePolicy: {
        deadLetterTargetArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('LaunchBufferDeadLetterQueue'), 'Arn'] },
        maxReceiveCount: 5,
      },
    });
    // enforceSSL: every queue policy denies requests without TLS.
    const policies = resourcesOfType(example.json, 'AWS::SQS::QueuePolicy');
    const queues = resourcesOfType(example.json, 'AWS::SQS::Queue').map(([id]) => id);
    const tlsOnly = new Set<string>();
    for (const [, p] of policies) {
      const denies = p.Properties.PolicyDocument.Statement.some(
        (s: any) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false',
      );
      if (denies) for (const q of p.Properties.Queues) tlsOnly.add(q.Ref);
    }
    for (const q of queues) assert.ok(tlsOnly.has(q), `${q} enforces TLS`);
  });

  test('an alarm watches the dead-letter queue depth and notifies the alert topic', () => {
    example.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        { Name: 'QueueName', Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('LaunchBufferDeadLetterQueue'), 'QueueName'] } },
      ],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: [{ Ref: Match.stringLikeRegexp('AlertTopic') }],
    });
  });
});

describe('EventBridge Scheduler → launcher', () => {
  test('uses the aws-scheduler L2 with the trigger\'s expression and time zone, no flexible window', () => {
    existing.template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(1 hour)',
      ScheduleExpressionTimezone: 'Europe/Berlin',
      FlexibleTimeWindow: { Mode: 'OFF' },
      State: 'ENABLED',
    });
  });

  test('delivers exactly the input the launcher decodes', () => {
    const expected = {
      source: 'jobrunner.scheduler',
      schedule: 'hourly-report',
      scheduled_time: '<aws.scheduler.scheduled-time>',
      schedule_arn: '<aws.scheduler.schedule-arn>',
    };
    assert.deepEqual(scheduleInput('hourly-report'), expected);
    const [[, schedule]] = resourcesOfType(existing.json, 'AWS::Scheduler::Schedule');
    assert.deepEqual(JSON.parse(schedule.Properties.Target.Input), expected);
  });

  test('targets the launcher with a retry policy and a dead-letter queue', () => {
    existing.template.hasResourceProperties('AWS::Scheduler::Schedule', {
      Target: {
        Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('Launch'), 'Arn'] },
        RoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('SchedulerRole'), 'Arn'] },
        RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 3600 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('LaunchBufferDeadLetterQueue'), 'Arn'] } },
      },
    });
  });

  test('the scheduler role is assumable only by EventBridge Scheduler, for this account and this schedule group', () => {
    const [[group, groupResource], ...others] = resourcesOfType(existing.json, 'AWS::Scheduler::ScheduleGroup');
    assert.deepEqual(others, [], 'one schedule group');
    const roles = resourcesOfType(existing.json, 'AWS::IAM::Role').filter(([, r]) =>
      r.Properties.AssumeRolePolicyDocument.Statement.some((s: any) => s.Principal?.Service === 'scheduler.amazonaws.com'),
    );
    assert.equal(roles.length, 1);
    const [statement, ...more] = roles[0][1].Properties.AssumeRolePolicyDocument.Statement;
    assert.deepEqual(more, []);
    assert.deepEqual(statement.Condition, {
      StringEquals: { 'aws:SourceAccount': '123456789012' },
      ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [group, 'Arn'] } },
    });
    // Every schedule is in that group (EventBridge Scheduler sends the group's ARN as aws:SourceArn).
    for (const [, schedule] of resourcesOfType(existing.json, 'AWS::Scheduler::Schedule')) {
      assert.equal(schedule.Properties.GroupName, groupResource.Properties.Name);
      assert.equal(schedule.Properties.Target.RoleArn['Fn::GetAtt'][0], roles[0][0]);
    }
  });

  test('the example runs its nightly job in Europe/Berlin', () => {
    example.template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 3 * * ? *)',
      ScheduleExpressionTimezone: 'Europe/Berlin',
      Target: { Input: Match.serializedJson(Match.objectLike({ schedule: 'nightly-inventory' })) },
    });
  });
});

describe('S3 Batch Operations and skip_missing', () => {
  const readsObjects = (json: Record<string, any>) =>
    statementsWith(json, 's3:GetObject').filter(({ roles }) => roles.includes(functionRole(json, 'jobrunner launcher')));
  const batchTrust = (json: Record<string, any>) =>
    resourcesOfType(json, 'AWS::IAM::Role').filter(([, r]) =>
      JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes('batchoperations.s3.amazonaws.com'),
    );

  test('off by default: no role for S3 Batch Operations and no object reads', () => {
    for (const { json } of [example, existing]) {
      assert.deepEqual(batchTrust(json), []);
      assert.deepEqual(readsObjects(json), []);
    }
  });

  test('s3BatchOperations: a role S3 Batch Operations assumes may invoke the launcher only', () => {
    const { json } = existingResources((p) => ({ ...p, launcher: { s3BatchOperations: true } }));
    const roles = batchTrust(json);
    assert.equal(roles.length, 1);
    const [roleId, role] = roles[0]!;
    assert.deepEqual(role.Properties.AssumeRolePolicyDocument.Statement[0].Condition, {
      StringEquals: { 'aws:SourceAccount': '123456789012' },
    });
    const invoke = statementsWith(json, 'lambda:InvokeFunction').filter(({ roles: r }) => r.includes(roleId));
    assert.equal(invoke.length, 1);
    const allowed = policyStatements(json).filter(({ roles: r }) => r.includes(roleId));
    assert.deepEqual(
      allowed.flatMap(({ statement }) => asArray<string>(statement.Action)),
      ['lambda:InvokeFunction'],
    );
  });

  test('s3BatchOperations: the launcher may HeadObject exactly the trigger prefixes', () => {
    const { json } = existingResources((p) => ({ ...p, launcher: { s3BatchOperations: true } }));
    const reads = readsObjects(json);
    assert.equal(reads.length, 1);
    const resources = asArray<any>(reads[0]!.statement.Resource).map((r) => JSON.stringify(r));
    assert.equal(resources.length, 2);
    assert.ok(resources.some((r) => r.includes('uploads/images/*.jpg')), resources.join());
    assert.ok(resources.some((r) => r.includes('uploads/raw/*')), resources.join());
    assert.deepEqual(asArray(reads[0]!.statement.Action).sort(), ['s3:GetObject', 's3:GetObjectVersion']);
    const list = statementsWith(json, 's3:ListBucket');
    assert.equal(list.length, 1);
    assert.ok(!JSON.stringify(list[0]!.statement.Resource).includes('/'), 'the bucket only');
  });

  test('skipMissing: HeadObject on that job\'s triggers, and skip_missing in the config', () => {
    const { json } = existingResources((p) => ({
      ...p,
      state: {},
      jobs: { ...p.jobs, thumbnails: { ...p.jobs!.thumbnails!, skipMissing: true } },
    }));
    assert.deepEqual(batchTrust(json), []);
    assert.equal(readsObjects(json).length, 1);
    const fn = resourcesOfType(json, 'AWS::Lambda::Function').find(([, r]) =>
      String(r.Properties.Description ?? '').startsWith('jobrunner launcher'),
    )!;
    const config = JSON.stringify(fn[1].Properties.Environment.Variables.JOBRUNNER_CONFIG);
    assert.ok(config.includes('skip_missing'), config.slice(0, 200));
  });

  test('cdk-nag finds nothing unacknowledged, cfn-lint nothing at all', () => {
    const { stack, json } = existingResources((p) => ({
      ...p,
      state: {},
      launcher: { s3BatchOperations: true },
      jobs: { ...p.jobs, thumbnails: { ...p.jobs!.thumbnails!, skipMissing: true } },
    }));
    const ours = new AwsSolutionsChecks(stack)
      .validateScope(stack)
      .violations.map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)
      .filter((v) => / at Existing\/(JobRunner|BucketNotificationsHandler)/.test(v));
    assert.deepEqual(ours, []);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobrunner-batch-'));
    const file = path.join(dir, 'batch.template.json');
    fs.writeFileSync(file, JSON.stringify(json, null, 1));
    const run = spawnSync(cfnLintBinary(), ['--ignore-checks', 'W3005', '--', file], { encoding: 'utf8' });
    if (run.error) throw run.error;
    assert.equal(run.status, 0, `cfn-lint findings:\n${run.stdout}${run.stderr}`);
  });
});
