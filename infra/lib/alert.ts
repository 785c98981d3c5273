// The alert unit: ECS "Task State Change" events with lastStatus STOPPED in the configured
// clusters go through an SQS buffer to the tracker, which classifies why each task stopped and
// publishes to an SNS topic (KMS-encrypted, TLS only) with email subscriptions.

import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { EventBuffer } from './buffer';
import { type FunctionOptions, JobRunnerFunction } from './function';
import { acknowledgeWildcardAction, acknowledgeWildcardResource } from './nag';

/** Tuning of the tracker. */
export interface TrackerOptions {
  /** At most this many concurrent tracker invocations (2-1000). @default 2 */
  readonly maxConcurrency?: number;
  /** @default 30 seconds */
  readonly timeout?: Duration;
  /**
   * How long the buffer gathers stops before invoking the tracker: it bounds alert latency and
   * lets one invocation digest a storm (one message per job and class). @default 30 seconds
   */
  readonly batchingWindow?: Duration;
  /** What happens to the topic's KMS key when the stack is deleted. @default RemovalPolicy.DESTROY (7-day pending window) */
  readonly keyRemovalPolicy?: RemovalPolicy;
}

export interface AlertTopicProps {
  readonly emails?: string[];
  readonly keyRemovalPolicy?: RemovalPolicy;
  /** An existing topic for the alarms about the alert path; when absent, a second topic is created. */
  readonly alarmTopic?: sns.ITopic;
  /** Emails subscribed to the created alarm topic. @default `emails` */
  readonly alarmEmails?: string[];
}

/**
 * The alert topic and its key, created before the functions because the config names the topic,
 * and the alarm channel: the topic the alarms about the alert path itself publish to (the
 * tracker's dead letters and errors). When the tracker cannot publish to the alert topic, its
 * alarm must not depend on that topic alone: the alarm topic has its own policy and
 * subscriptions. Unless the user brings one (`alarmTopic`), it is a second topic encrypted with
 * the same key.
 */
export class AlertTopic extends Construct {
  readonly topic: sns.Topic;
  readonly key: kms.Key;
  /** Where the alarms about the alert path go (the created second topic, or the user's). */
  readonly alarmTopic: sns.ITopic;

  constructor(scope: Construct, id: string, props: AlertTopicProps) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: 'jobrunner: encrypts the alert and alarm topics',
      enableKeyRotation: true,
      pendingWindow: Duration.days(7),
      removalPolicy: props.keyRemovalPolicy ?? RemovalPolicy.DESTROY,
    });
    this.topic = new sns.Topic(this, 'Topic', {
      displayName: 'jobrunner alerts',
      masterKey: this.key,
      enforceSSL: true,
    });
    for (const email of props.emails ?? []) {
      this.topic.addSubscription(new subscriptions.EmailSubscription(email));
    }
    if (props.alarmTopic) {
      this.alarmTopic = props.alarmTopic;
    } else {
      const alarmTopic = new sns.Topic(this, 'AlarmTopic', {
        displayName: 'jobrunner alert-path alarms',
        masterKey: this.key,
        enforceSSL: true,
      });
      for (const email of props.alarmEmails ?? props.emails ?? []) {
        alarmTopic.addSubscription(new subscriptions.EmailSubscription(email));
      }
      this.alarmTopic = alarmTopic;
    }
  }

  /**
   * Lets CloudWatch publish the alarms `alarmArns` to `topic`: `sns:Publish` on the topic (its
   * policy otherwise holds only the TLS Deny, which replaces SNS's default policy) and the key's
   * data-key actions, both only for this account and exactly these alarm ARNs. A topic the user
   * brought (`alarmTopic`) keeps its own policy and key: nothing is added for it.
   */
  allowAlarms(topic: sns.ITopic, alarmArns: string[]): void {
    if (!alarmArns.length || !this.ownTopics().includes(topic)) return;
    const cloudwatch = new iam.ServicePrincipal('cloudwatch.amazonaws.com');
    const conditions = {
      StringEquals: { 'aws:SourceAccount': Stack.of(this).account },
      ArnEquals: { 'aws:SourceArn': alarmArns },
    };
    topic.addToResourcePolicy(
      new iam.PolicyStatement({ principals: [cloudwatch], actions: ['sns:Publish'], resources: [topic.topicArn], conditions }),
    );
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({ principals: [cloudwatch], actions: ['kms:Decrypt', 'kms:GenerateDataKey*'], resources: ['*'], conditions }),
    );
  }

  /** The topics this construct created (and encrypted with its key). */
  private ownTopics(): sns.ITopic[] {
    return this.node.tryFindChild('AlarmTopic') ? [this.topic, this.alarmTopic] : [this.topic];
  }
}

export interface TrackerProps extends TrackerOptions {
  readonly config: string;
  readonly functionOptions?: FunctionOptions;
  readonly topic: AlertTopic;
  /** The clusters whose stopped tasks are reported. */
  readonly clusters: ecs.ICluster[];
}

export class Tracker extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  readonly buffer: EventBuffer;
  /** ECS Task State Change, lastStatus STOPPED, in the configured clusters. */
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: TrackerProps) {
    super(scope, id);
    const timeout = props.timeout ?? Duration.seconds(30);
    const fn = new JobRunnerFunction(this, 'Tracker', {
      ...props.functionOptions,
      binaryName: 'tracker',
      description: 'jobrunner tracker: stopped ECS tasks to SNS alerts',
      config: props.config,
      timeout,
    });
    this.function = fn.function;
    this.role = fn.role;

    this.buffer = new EventBuffer(this, 'Buffer', {
      consumerTimeout: timeout,
    });
    this.function.addEventSource(
      new SqsEventSource(this.buffer.queue, {
        batchSize: 100,
        maxBatchingWindow: props.batchingWindow ?? Duration.seconds(30),
        reportBatchItemFailures: true,
        maxConcurrency: props.maxConcurrency ?? 2,
      }),
    );

    this.rule = new events.Rule(this, 'TaskStopped', {
      description: 'jobrunner: stopped ECS tasks of the configured clusters to the tracker buffer',
      eventPattern: {
        source: ['aws.ecs'],
        detailType: ['ECS Task State Change'],
        detail: {
          lastStatus: ['STOPPED'],
          clusterArn: [...new Set(props.clusters)].map((c) => c.clusterArn),
        },
      },
    });
    this.rule.addTarget(
      new eventsTargets.SqsQueue(this.buffer.queue, {
        deadLetterQueue: this.buffer.deadLetterQueue,
        retryAttempts: 185,
        maxEventAge: Duration.hours(24),
      }),
    );

    // sns:Publish on this topic only, plus the data key it needs from the topic's own key.
    props.topic.topic.grantPublish(this.role);
    acknowledgeWildcardAction(
      this.role,
      'kms:GenerateDataKey*',
      "Publishing to a KMS-encrypted topic needs GenerateDataKey* (AWS's documented action set); the statement is limited to the topic's own key.",
    );
    // Reading the stopped task's definition (container limits, essential flags) for the alert.
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['ecs:DescribeTaskDefinition'], resources: ['*'] }),
    );
    acknowledgeWildcardResource(
      this.role,
      '*',
      'ecs:DescribeTaskDefinition supports no resource-level permissions (AWS requires resource "*"); it is read-only.',
    );
  }
}
