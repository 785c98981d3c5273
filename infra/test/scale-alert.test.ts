// The scale unit (one-minute tick → scaler, state table) and the alert unit (ECS task stopped →
// SQS buffer → tracker → encrypted SNS topic with email subscriptions).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import { existingResources } from './fixtures';
import { resourcesOfType, synthExample } from './support';

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
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expires_at', Enabled: true },
    });
  });
});

describe('tracker', () => {
  test('stopped tasks of the configured clusters go to its buffer', () => {
    existing.template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.ecs'],
        'detail-type': ['ECS Task State Change'],
        detail: {
          lastStatus: ['STOPPED'],
          clusterArn: [
            'arn:aws:ecs:eu-central-1:123456789012:cluster/jobs',
            'arn:aws:ecs:eu-central-1:123456789012:cluster/batch',
          ],
        },
      },
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('AlertBufferQueue'), 'Arn'] },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('AlertBufferDeadLetterQueue'), 'Arn'] } },
        }),
      ],
    });
    example.template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.ecs'],
        detail: { lastStatus: ['STOPPED'], clusterArn: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^Cluster'), 'Arn'] }] },
      },
    });
  });

  test('consumes the buffer with partial batch failures and a concurrency cap', () => {
    example.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: Match.stringLikeRegexp('Alert') },
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('AlertBufferQueue'), 'Arn'] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 2 },
    });
    example.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Dimensions: [
        { Name: 'QueueName', Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('AlertBufferDeadLetterQueue'), 'QueueName'] } },
      ],
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

  test('is only created when alerts are configured', () => {
    const e = existingResources((p) => ({ ...p, alerts: undefined }));
    e.template.resourceCountIs('AWS::SNS::Topic', 0);
    const descriptions = resourcesOfType(e.json, 'AWS::Lambda::Function').map(([, r]) => r.Properties.Description);
    assert.ok(!descriptions.some((d) => String(d).startsWith('jobrunner tracker')));
  });
});
