// The launch unit: S3 rules → SQS buffer → launcher; EventBridge Scheduler → launcher.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import { scheduleInput } from '../lib';
import { existingResources } from './fixtures';
import { resourcesOfType, synthExample } from './support';

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
