// The small state the scaler (scale-in history) and the tracker (dedupe of repeated task
// events) keep: one on-demand DynamoDB table whose items expire through TTL. Each function may
// read and write only the items under its own key prefix (`dynamodb:LeadingKeys`).

import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

export interface StateTableProps {
  /**
   * Everything in the table is reproducible (histories and dedupe marks that expire anyway).
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The item actions the functions call (`crates/aws/src/state_store.rs`): a strongly consistent
 * read and a conditional write of one item by `pk`.
 */
export const STATE_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem'];

/** The `pk` prefixes of each function's items (the scaler's `state_key`, the tracker's `DEDUPE_KEY_PREFIX`). */
export const STATE_KEY_PREFIXES = { scaler: 'scaler#', tracker: 'alert/' } as const;

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

  /**
   * Lets a function read and write its own state items: `STATE_ACTIONS` on this table, only for
   * partition keys that start with `keyPrefix`.
   */
  grantState(grantee: iam.IGrantable, keyPrefix: string): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: STATE_ACTIONS,
      resourceArns: [this.table.tableArn],
      conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${keyPrefix}*`] } },
    });
  }
}
