// The scale unit (one-minute tick → scaler), the state table (the run ledger and its listing
// index), and the track unit (ECS task running or stopped, and a one-minute sweep → SQS buffer →
// tracker → encrypted SNS topic with email subscriptions).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { LIST_INDEX, TRACKED_STATUSES } from '../lib';
import { existingResources } from './fixtures';
import { asArray, deployedConfigs, functionRole, resourcesOfType, statementsWith, synthExample } from './support';

const example = synthExample();
const existing = existingResources();

describe('scaler', () => {
  test('runs every minute, one run at a time, never overlapping the next tick', () => {
    example.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('Scale'), 'Arn'] },
          RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 },
        }),
      ],
    });
    example.template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^jobrunner scaler'),
      Runtime: 'provided.al2023',
      Architectures: ['arm64'],
      ReservedConcurrentExecutions: 1,
      Timeout: 55,
    });
    example.template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [Match.stringLikeRegexp('Scale'), 'Arn'] },
    });
  });

  test('reserved concurrency can be turned off for small accounts', () => {
    const e = existingResources((p) => ({ ...p, scaler: { reserveConcurrency: false } }));
    e.template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^jobrunner scaler'),
      ReservedConcurrentExecutions: Match.absent(),
    });
  });

  test('is only created when workers are configured', () => {
    const e = existingResources((p) => ({ ...p, workers: undefined }));
    const descriptions = resourcesOfType(e.json, 'AWS::Lambda::Function').map(([, r]) => r.Properties.Description);
    assert.ok(!descriptions.some((d) => String(d).startsWith('jobrunner scaler')));
  });
});

describe('state table', () => {
  test('pk string key, on demand, point-in-time recovery, TTL on expires_at', () => {
    example.template.resourceCountIs('AWS::DynamoDB::Table', 1);
    example.template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expires_at', Enabled: true },
    });
  });

  test('lists runs through the runs-by-day index: list_pk and list_sk strings, every attribute projected', () => {
    const [[, table]] = resourcesOfType(existing.json, 'AWS::DynamoDB::Table');
    assert.deepEqual(table.Properties.GlobalSecondaryIndexes, [
      {
        IndexName: 'runs-by-day',
        KeySchema: [
          { AttributeName: 'list_pk', KeyType: 'HASH' },
          { AttributeName: 'list_sk', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ]);
    assert.deepEqual(
      [...table.Properties.AttributeDefinitions].sort((a: any, b: any) => a.AttributeName.localeCompare(b.AttributeName)),
      [
        { AttributeName: 'list_pk', AttributeType: 'S' },
        { AttributeName: 'list_sk', AttributeType: 'S' },
        { AttributeName: 'pk', AttributeType: 'S' },
      ],
    );
    assert.deepEqual(LIST_INDEX, { name: 'runs-by-day', partitionKey: 'list_pk', sortKey: 'list_sk' });
  });

  test('is created even without workers and alerts (the ledger needs it)', () => {
    const e = existingResources((p) => ({ defaults: p.defaults, jobs: { report: p.jobs!.report } }));
    e.template.resourceCountIs('AWS::DynamoDB::Table', 1);
    assert.ok(e.jobRunner.state.table);
  });

  test('keeps the ledger when asked to', () => {
    const e = existingResources((p) => ({ ...p, state: { removalPolicy: RemovalPolicy.RETAIN, retentionDays: 365 } }));
    e.template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
  });
});

describe('tracker', () => {
  const sweepRules = (json: Record<string, any>) =>
    resourcesOfType(json, 'AWS::Events::Rule').filter(([, r]) =>
      (r.Properties.Targets ?? []).some((t: any) => /TrackBufferQueue/.test(t.Arn?.['Fn::GetAtt']?.[0] ?? '')) &&
      r.Properties.ScheduleExpression !== undefined,
    );

  test('running and stopped tasks of the configured clusters go to its buffer', () => {
    assert.deepEqual(TRACKED_STATUSES, ['RUNNING', 'STOPPED']);
    existing.template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.ecs'],
        'detail-type': ['ECS Task State Change'],
        detail: {
          lastStatus: ['RUNNING', 'STOPPED'],
          clusterArn: [
            'arn:aws:ecs:eu-central-1:123456789012:cluster/jobs',
            'arn:aws:ecs:eu-central-1:123456789012:cluster/batch',
          ],
        },
      },
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('TrackBufferQueue'), 'Arn'] },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('TrackBufferDeadLetterQueue'), 'Arn'] } },
          RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86400 },
        }),
      ],
    });
    example.template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.ecs'],
        detail: { lastStatus: ['RUNNING', 'STOPPED'], clusterArn: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^Cluster'), 'Arn'] }] },
      },
    });
    // No rule sends tasks that are only pending or provisioning (they carry nothing to record).
    for (const [, r] of resourcesOfType(existing.json, 'AWS::Events::Rule')) {
      const statuses = r.Properties.EventPattern?.detail?.lastStatus;
      if (statuses) assert.deepEqual(statuses, ['RUNNING', 'STOPPED']);
    }
  });

  test('a one-minute sweep tick goes to the same buffer, with the same retries and dead-letter queue', () => {
    const found = sweepRules(existing.json);
    assert.equal(found.length, 1);
    const [[, rule]] = found;
    assert.equal(rule.Properties.ScheduleExpression, 'rate(1 minute)');
    assert.equal(rule.Properties.State, 'ENABLED');
    assert.equal(rule.Properties.Targets.length, 1);
    const [target] = rule.Properties.Targets;
    assert.equal(target.Input, undefined, 'the tick is EventBridge\'s own Scheduled Event');
    assert.deepEqual(target.RetryPolicy, { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86400 });
    assert.match(target.DeadLetterConfig.Arn['Fn::GetAtt'][0], /^JobRunnerTrackBufferDeadLetterQueue/);
    assert.ok(existing.jobRunner.tracker.sweepRule);
  });

  test('EventBridge may send both rules\' events to the buffer, and no other rule', () => {
    const [[, policy]] = resourcesOfType(existing.json, 'AWS::SQS::QueuePolicy').filter(([, r]) =>
      r.Properties.Queues.some((q: any) => /^JobRunnerTrackBufferQueue/.test(q.Ref)),
    );
    const sources = policy.Properties.PolicyDocument.Statement.filter((s: any) => s.Principal?.Service === 'events.amazonaws.com').map(
      (s: any) => s.Condition.ArnEquals['aws:SourceArn']['Fn::GetAtt'][0],
    );
    assert.equal(sources.length, 2);
    assert.ok(sources.some((s: string) => /^JobRunnerTrackTaskStateChange/.test(s)), sources.join());
    assert.ok(sources.some((s: string) => /^JobRunnerTrackSweep/.test(s)), sources.join());
  });

  test('the sweep can be turned off', () => {
    const e = existingResources((p) => ({ ...p, tracker: { sweep: false } }));
    assert.deepEqual(sweepRules(e.json), []);
    assert.equal(e.jobRunner.tracker.sweepRule, undefined);
    // The task rule stays.
    e.template.hasResourceProperties('AWS::Events::Rule', { EventPattern: Match.objectLike({ source: ['aws.ecs'] }) });
  });

  test('consumes the buffer with partial batch failures and a concurrency cap', () => {
    example.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: Match.stringLikeRegexp('Track') },
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('TrackBufferQueue'), 'Arn'] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 2 },
    });
    example.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Dimensions: [
        { Name: 'QueueName', Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('TrackBufferDeadLetterQueue'), 'QueueName'] } },
      ],
    });
    example.template.hasResourceProperties('AWS::Lambda::Function', {
      Description: "jobrunner tracker: records each run's progress and publishes classified alerts",
    });
  });

  test('the topic is KMS-encrypted (rotating key) and refuses non-TLS publishers', () => {
    example.template.hasResourceProperties('AWS::SNS::Topic', {
      KmsMasterKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('AlertTopicKey'), 'Arn'] },
    });
    example.template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true, PendingWindowInDays: 7 });
    example.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 'sns:Publish', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  test('CloudWatch alarms may use the topic key, for this account and named alarms only', () => {
    example.template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            Condition: {
              StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
              ArnEquals: { 'aws:SourceArn': Match.anyValue() },
            },
          }),
        ]),
      },
    });
  });

  test('each alert email is subscribed to the alert topic', () => {
    for (const email of ['ops@example.com', 'oncall@example.com']) {
      example.template.hasResourceProperties('AWS::SNS::Subscription', {
        Protocol: 'email',
        Endpoint: email,
        TopicArn: { Ref: Match.stringLikeRegexp('^JobRunnerAlertTopic[0-9A-F]{8}$') },
      });
    }
  });

  test('without alerts it keeps the ledger and publishes nowhere', () => {
    const e = existingResources((p) => ({ ...p, alerts: undefined }));
    e.template.resourceCountIs('AWS::SNS::Topic', 0);
    const descriptions = resourcesOfType(e.json, 'AWS::Lambda::Function').map(([, r]) => r.Properties.Description);
    assert.ok(descriptions.some((d) => String(d).startsWith('jobrunner tracker')));
    assert.equal(statementsWith(e.json, 'sns:Publish').length, 0);
  });
});

describe('tracker: time limits and retries', () => {
  test('stops overdue tasks and requests retries only when a job asks for them', () => {
    const plain = existingResources((p) => p);
    const tracker = functionRole(plain.json, 'jobrunner tracker');
    const of = (json: Record<string, any>, action: string) =>
      statementsWith(json, action).filter((s) => s.roles.includes(functionRole(json, 'jobrunner tracker')));
    assert.equal(of(plain.json, 'ecs:StopTask').length, 0, tracker);
    assert.equal(of(plain.json, 'sqs:SendMessage').length, 0);

    const limited = existingResources((p) => ({
      ...p,
      defaults: { ...p.defaults, maxRuntime: Duration.minutes(30) },
      jobs: { ...p.jobs, report: { ...p.jobs!.report, retry: { attempts: 3, growOnOom: true } } },
    }));
    const [stop] = of(limited.json, 'ecs:StopTask');
    assert.ok(stop.statement.Condition.ArnEquals['ecs:cluster'], 'only in the jobs\' clusters');
    assert.equal(of(limited.json, 'ecs:ListTasks').length, 1);
    const [send] = of(limited.json, 'sqs:SendMessage');
    const queues = asArray<any>(send.statement.Resource).map((r) => r['Fn::GetAtt'][0]);
    assert.deepEqual(queues.length, 1);
    assert.match(queues[0], /^JobRunnerLaunchBufferQueue/);
    const doc = JSON.parse(Object.values(deployedConfigs(limited.json))[0]);
    assert.equal(doc.defaults.max_runtime, '1800s');
    assert.deepEqual(doc.jobs.report.retry, { attempts: 3, grow_on_oom: true });
  });
});
