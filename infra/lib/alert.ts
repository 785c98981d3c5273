// The alert topic: an SNS topic (KMS-encrypted, TLS only) with email subscriptions, where the
// tracker publishes classified alerts about runs (and the launcher its `launch_failed` alerts),
// and the alarm topic for the alarms about the alert path itself.

import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { acknowledgeWildcardAction } from './nag';

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

  /**
   * Lets a function publish alerts: `sns:Publish` on the alert topic only, plus the data-key
   * actions it needs from the topic's own key (`kms:Decrypt`, `kms:GenerateDataKey*`).
   */
  grantPublish(role: iam.IRole): iam.Grant {
    const grant = this.topic.grantPublish(role);
    acknowledgeWildcardAction(
      role,
      'kms:GenerateDataKey*',
      "Publishing to a KMS-encrypted topic needs GenerateDataKey* (AWS's documented action set); the statement is limited to the topic's own key.",
    );
    return grant;
  }

  /** The topics this construct created (and encrypted with its key). */
  private ownTopics(): sns.ITopic[] {
    return this.node.tryFindChild('AlarmTopic') ? [this.topic, this.alarmTopic] : [this.topic];
  }
}
