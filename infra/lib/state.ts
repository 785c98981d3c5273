// The small state the scaler (scale-in history) and the alerter (dedupe of repeated task
// events) keep: one on-demand DynamoDB table whose items expire through TTL.

import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

export interface StateTableProps {
  /**
   * Everything in the table is reproducible (histories and dedupe marks that expire anyway).
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;
}

/** The item actions the functions use: read, conditional write, update and query by `pk`. */
export const STATE_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'];

export class StateTable extends Construct {
  readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: StateTableProps = {}) {
    super(scope, id);
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: 'expires_at',
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
    });
  }

  /** Lets a function read and write its state items (and nothing else in DynamoDB). */
  grantState(grantee: iam.IGrantable): iam.Grant {
    return this.table.grant(grantee, ...STATE_ACTIONS);
  }
}
